// `apps/api` on PostgreSQL with PKI_API_WORKERS=2 as a real process tree (a primary and two
// node:cluster workers sharing the port), after `pki init`: what the worker e2e tests share.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { freshDatabase } from "./harness.ts";
import { childEnv } from "./settings.ts";
import { freePort, pki, run, spawnApp, spawnNode, stopSpawnedApps } from "./tools.ts";

export interface ApiOnWorkers {
  env: Record<string, string>;
  apiUrl: string;
  opsPort: number;
  rootPem: string;
  primary: ChildProcessWithoutNullStreams;
  /** what the primary and its workers printed so far */
  output(): string;
  /** the workers' pids (tsx also runs an esbuild service as a child, which is left out) */
  workerPids(): number[];
  /** each worker's command line, as /proc/<pid>/cmdline has it */
  workerCommands(): string[][];
  /** polls `probe` every 200 ms until it returns a value; the apps' output is in the error */
  until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/** The worker's entry file: the TypeScript (tsx) or a bundle's (build-dist.mjs). */
const WORKER_ENTRY = /\/(apps\/api\/src\/worker\.ts|api-worker\.js)$/;

/**
 * `pki init`, then apps/api with two workers; resolves once /readyz answers 200. apps/api
 * runs from its TypeScript, or from `bundle` (its main.js from build-dist.mjs) as the image runs it.
 */
export async function startApiOnWorkers(extraEnv: Record<string, string> = {}, { bundle }: { bundle?: string } = {}): Promise<ApiOnWorkers> {
  const db = await freshDatabase();
  const dataDir = mkdtempSync(path.join(tmpdir(), "pki-workers-"));
  const opsPort = await freePort();
  const apiPort = await freePort();
  const env: Record<string, string> = {
    PKI_DATA_DIR: dataDir,
    PKI_LOG_LEVEL: "warn",
    PKI_BIND: "127.0.0.1",
    DATABASE_URL: db.url,
    PKI_HTTP_PORT: String(opsPort),
    PKI_API_PORT: String(apiPort),
    PKI_API_WORKERS: "2",
    ...extraEnv,
  };
  const init = pki(["init"], env);
  expect(init.status, init.stderr).toBe(0);
  let output = "";
  const primary = bundle ? spawnNode([bundle], { env: childEnv(env) }) : spawnApp("apps/api/src/main.ts", { env: childEnv(env) });
  primary.stdout.on("data", (d) => (output += d));
  primary.stderr.on("data", (d) => (output += d));
  const until = async <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await until("the API to be ready", async () => {
    if (primary.exitCode !== null) throw new Error(`the API exited:\n${output}`);
    return fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.status === 200 || undefined,
      () => undefined,
    );
  });
  const commandOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const workerPids = () =>
    run("ps", ["--ppid", String(primary.pid), "-o", "pid="])
      .stdout.split("\n")
      .map((line) => Number.parseInt(line.trim(), 10))
      .filter((pid) => {
        try {
          return WORKER_ENTRY.test(commandOf(pid).at(-1) ?? "");
        } catch {
          return false; // exited meanwhile
        }
      })
      .sort();
  return {
    env,
    apiUrl: `https://127.0.0.1:${apiPort}`,
    opsPort,
    rootPem: readFileSync(path.join(dataDir, "root.pem"), "utf8"),
    primary,
    output: () => output,
    workerPids,
    workerCommands: () => workerPids().map(commandOf),
    until,
    stop: async () => {
      stopSpawnedApps();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
