// A PostgreSQL primary with a streaming-replication hot standby, both private to one test:
// the primary is made with initdb (wal_level=replica, a replication user and its pg_hba
// line), the standby with pg_basebackup -R from it, each on its own free port on
// 127.0.0.1. The primary can be crashed and restarted; the standby reconnects by itself.
import { execFileSync } from "node:child_process";
import { appendFileSync, chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "./tools.ts";

const PG_BIN = readdirSync("/usr/lib/postgresql")
  .sort()
  .reverse()
  .map((v) => `/usr/lib/postgresql/${v}/bin`)[0]!;
const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];

function pgTool(tool: string, args: string[]): string {
  const [command, ...rest] = [...asPostgres, path.join(PG_BIN, tool), ...args];
  return execFileSync(command!, rest, { stdio: "pipe", encoding: "utf8" });
}

export interface ReplicatedPostgres {
  primaryUrl: string;
  standbyUrl: string;
  /** stops the primary as a crash would (immediate: no checkpoint) and starts it again */
  restartPrimary(): void;
  /**
   * How long until the standby has replayed everything the primary has written so far:
   * the primary's current WAL position, then the standby polled until it has replayed it.
   */
  measureLagMs(timeoutMs?: number): Promise<number>;
  destroy(): void;
}

const REPLICATION_USER = "replicator";

export async function replicatedPostgres(): Promise<ReplicatedPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), "pki-replicas-pg-"));
  if (asPostgres.length) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const primaryDir = `${dir}/primary`;
  const standbyDir = `${dir}/standby`;
  // fsync=off only gives up durability across an OS crash; a killed server process loses
  // nothing it acknowledged (synchronous_commit stays on), which is what the test relies on.
  const common = `-h 127.0.0.1 -k ${dir} -c fsync=off -c max_connections=200`;
  pgTool("initdb", ["-D", primaryDir, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
  appendFileSync(`${primaryDir}/pg_hba.conf`, `host replication ${REPLICATION_USER} 127.0.0.1/32 trust\n`);
  const startPrimary = () => pgTool("pg_ctl", ["-D", primaryDir, "-l", `${dir}/primary.log`, "-w", "-o", `${common} -p ${primaryPort} -c wal_level=replica -c max_wal_senders=5`, "start"]);
  startPrimary();
  const primaryUrl = `postgresql://postgres@127.0.0.1:${primaryPort}/postgres`;
  const admin = new pg.Client({ connectionString: primaryUrl });
  await admin.connect();
  await admin.query(`CREATE ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN`);
  await admin.end();

  // -R writes primary_conninfo and standby.signal: the copy starts as a streaming standby.
  pgTool("pg_basebackup", ["-h", "127.0.0.1", "-p", String(primaryPort), "-U", REPLICATION_USER, "-D", standbyDir, "-R", "-X", "stream", "-c", "fast"]);
  pgTool("pg_ctl", ["-D", standbyDir, "-l", `${dir}/standby.log`, "-w", "-o", `${common} -p ${standbyPort} -c hot_standby=on`, "start"]);
  const standbyUrl = `postgresql://postgres@127.0.0.1:${standbyPort}/postgres`;

  const stop = (dataDir: string) => {
    try {
      pgTool("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    } catch {
      // already stopped
    }
  };

  return {
    primaryUrl,
    standbyUrl,
    restartPrimary: () => {
      pgTool("pg_ctl", ["-D", primaryDir, "-m", "immediate", "-w", "stop"]);
      startPrimary();
    },
    measureLagMs: async (timeoutMs = 30_000) => {
      const primary = new pg.Client({ connectionString: primaryUrl });
      const standby = new pg.Client({ connectionString: standbyUrl });
      // a server going away mid-sample is an error on the query, not a crash of the test
      for (const client of [primary, standby]) client.on("error", () => {});
      try {
        await Promise.all([primary.connect(), standby.connect()]);
        const started = performance.now();
        const { rows } = await primary.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
        for (;;) {
          const replayed = await standby.query<{ caught_up: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up", [rows[0]!.lsn]);
          if (replayed.rows[0]!.caught_up) return performance.now() - started;
          if (performance.now() - started > timeoutMs) throw new Error(`the standby did not replay ${rows[0]!.lsn} within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        await Promise.all([primary.end().catch(() => {}), standby.end().catch(() => {})]);
      }
    },
    destroy: () => {
      stop(standbyDir);
      stop(primaryDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
