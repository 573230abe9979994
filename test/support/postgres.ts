// A private PostgreSQL cluster a fault test can stop and start at will (the shared test
// server must stay up for everyone else).
import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./tools.ts";

const PG_BIN = readdirSync("/usr/lib/postgresql")
  .sort()
  .reverse()
  .map((v) => `/usr/lib/postgresql/${v}/bin`)[0]!;
const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];

function pg(tool: string, args: string[]): void {
  const [command, ...rest] = [...asPostgres, path.join(PG_BIN, tool), ...args];
  execFileSync(command!, rest, { stdio: "pipe" });
}

export interface OwnPostgres {
  url: string;
  stop(): void;
  start(): void;
  destroy(): void;
}

export async function ownPostgres(): Promise<OwnPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), "pki-own-pg-"));
  if (asPostgres.length) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  const port = await freePort();
  pg("initdb", ["-D", `${dir}/data`, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
  const start = () => pg("pg_ctl", ["-D", `${dir}/data`, "-l", `${dir}/log`, "-w", "-o", `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off`, "start"]);
  const stop = () => pg("pg_ctl", ["-D", `${dir}/data`, "-m", "immediate", "-w", "stop"]);
  start();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: () => {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
