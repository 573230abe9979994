import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { connect, type Connection } from "./connection.ts";

const dir = mkdtempSync(path.join(tmpdir(), "pki-embedded-"));
let connection: Connection | undefined;

afterAll(async () => {
  await connection?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the embedded database", () => {
  it("runs with the footprint settings (PostgreSQL's 128 MB of shared buffers were all resident)", async () => {
    connection = await connect({ url: undefined, embeddedDir: dir, embeddedRole: "server" });
    const setting = async (name: string) => (await connection!.sql.query<{ value: string }>("SELECT current_setting($1) AS value", [name]))[0]?.value;
    expect(await setting("shared_buffers")).toBe("4MB");
    expect(await setting("wal_buffers")).toBe("512kB");
    expect(await setting("max_connections")).toBe("10");
    // and it still does what the CA needs of it: the inventory's tables, pg_trgm searches
    expect((await connection.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates WHERE search_text % 'example'"))[0]?.n).toBe("0");
  });
});

/**
 * Starts a process that owns the embedded database in `dataDir`, as a child of a shell
 * that then becomes `sleep` and never reaps it: once killed, the owner stays a zombie,
 * as a crashed server does until its parent notices. Resolves with both PIDs once it serves.
 */
async function ownerThatStaysAZombie(dataDir: string): Promise<{ owner: number; parent: ChildProcess }> {
  const script = `const { embeddedEndpoint } = await import(${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, "embedded.ts")).href)});
await embeddedEndpoint(${JSON.stringify(dataDir)}, "server");
console.log("serving " + process.pid);
setInterval(() => {}, 1 << 30);`;
  const parent = spawn("sh", ["-c", `"${process.execPath}" --import tsx --input-type=module -e "$OWNER_SCRIPT" & exec sleep 300`], {
    env: { ...process.env, OWNER_SCRIPT: script },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  for await (const chunk of parent.stdout ?? []) {
    out += String(chunk);
    const serving = /serving (\d+)/.exec(out);
    if (serving) return { owner: Number(serving[1]), parent };
  }
  throw new Error(`the owner process ended before it served: ${out}`);
}

const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];

describe("ownership of the embedded database", () => {
  it("passes to the next start at once when the owner is killed, while it is still a zombie", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "pki-embedded-"));
    const { owner, parent } = await ownerThatStaysAZombie(dataDir);
    let restarted: Connection | undefined;
    try {
      process.kill(owner, "SIGKILL");
      for (let i = 0; i < 100 && processState(owner) !== "Z"; i++) await sleep(20);
      expect(processState(owner)).toBe("Z"); // its PID still answers kill(pid, 0)
      expect(existsSync(path.join(dataDir, "run", ".s.PGSQL.5432"))).toBe(true); // the dead owner's socket
      restarted = await connect({ url: undefined, embeddedDir: dataDir, embeddedRole: "server" });
      expect((await restarted.sql.query<{ one: number }>("SELECT 1 AS one"))[0]?.one).toBe(1);
    } finally {
      await restarted?.close();
      parent.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it("is not held by a lock file naming a live process and a socket nobody serves", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "pki-embedded-"));
    let started: Connection | undefined;
    try {
      mkdirSync(path.join(dataDir, "run"), { recursive: true, mode: 0o700 });
      // what a reboot leaves: a socket file, and the old owner's PID now used by another process
      const bound = spawnSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path.join(dataDir, "run", ".s.PGSQL.5432")]);
      expect(bound.status, String(bound.stderr)).toBe(0);
      writeFileSync(path.join(dataDir, "owner.lock"), JSON.stringify({ pid: process.pid, role: "server" }));
      started = await connect({ url: undefined, embeddedDir: dataDir, embeddedRole: "server" });
      expect((await started.sql.query<{ one: number }>("SELECT 1 AS one"))[0]?.one).toBe(1);
    } finally {
      await started?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
