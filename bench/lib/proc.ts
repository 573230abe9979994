// Child processes the benchmarks start: every one is registered and stopped on exit,
// on error and on SIGINT/SIGTERM, so a failed benchmark leaves nothing running.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createServer } from "node:net";

const running = new Set<ChildProcess>();
/** servers that fork workers (openssl ocsp -multi): their children are stopped by pid too */
const forking = new Set<number>();

function killChildren(parent: number, signal: NodeJS.Signals): void {
  const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(parent)], { encoding: "utf8" });
  for (const pid of (r.stdout ?? "").split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

export interface Started {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts a long-running process (a server). Its output is kept (last 64 kB) for error messages. */
export function start(command: string, args: string[], options: SpawnOptions & { forks?: boolean } = {}): Started {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  running.add(child);
  if (options.forks) forking.add(child.pid!);
  const kill = (signal: NodeJS.Signals) => {
    if (options.forks) killChildren(child.pid!, signal);
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  let out = "";
  const keep = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => (running.delete(child), resolve(code))));
  return {
    child,
    output: () => out,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      kill(signal);
      const timer = setTimeout(() => kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      forking.delete(child.pid!);
      return code;
    },
  };
}

export function stopAll(): void {
  for (const pid of forking) killChildren(pid, "SIGKILL");
  forking.clear();
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}
process.once("exit", stopAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => (stopAll(), process.exit(130)));

/** Runs a command to completion (bounded by `timeoutMs`); throws with its output on failure. */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string; timeoutMs?: number; allowFail?: boolean } = {}) {
  const result = spawnSync(command, args, {
    env: options.env ?? process.env,
    input: options.input,
    cwd: options.cwd,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    timeout: options.timeoutMs ?? 600_000,
    killSignal: "SIGKILL",
  });
  if (result.error) throw result.error;
  if (result.status !== 0 && !options.allowFail)
    throw new Error(`${command} ${args.join(" ").slice(0, 200)} exited ${result.status ?? result.signal}: ${(result.stderr || result.stdout).slice(-2000)}`);
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers `status` (default 200); returns the milliseconds it took. */
export async function waitForHttp(url: string, options: { timeoutMs?: number; status?: number | "any"; intervalMs?: number; alive?: () => boolean } = {}): Promise<number> {
  const t0 = performance.now();
  const deadline = t0 + (options.timeoutMs ?? 60_000);
  let last = "";
  while (performance.now() < deadline) {
    if (options.alive && !options.alive()) throw new Error(`the process exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (options.status === "any" || res.status === (options.status ?? 200)) return performance.now() - t0;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(options.intervalMs ?? 20);
  }
  throw new Error(`${url} did not answer ${options.status ?? 200} within ${options.timeoutMs ?? 60_000} ms (last: ${last})`);
}

export function which(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

/** CPU time a process has used so far, all its threads, in ms: in user space and in the kernel. */
export function cpuTimes(pid: number): { userMs: number; systemMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // fields after the command name, which may itself hold spaces: utime and stime are the 14th and 15th, in 1/100 s
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
}
