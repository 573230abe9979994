// Child processes the benchmarks start: every one is registered and stopped on exit,
// on error and on SIGINT/SIGTERM, so a failed benchmark leaves nothing running.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
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

/** The fields of a /proc stat line after the command name (which may itself hold spaces). */
const statFields = (file: string) => {
  const stat = readFileSync(file, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
};
// utime and stime are the 14th and 15th fields, cutime and cstime (children waited for) the 16th and 17th, in 1/100 s
const ticksMs = (fields: string[], at: number) => ({ userMs: Number(fields[at]) * 10, systemMs: Number(fields[at + 1]) * 10 });

/** CPU time a process has used so far, all its threads, in ms: in user space and in the kernel. */
export function cpuTimes(pid: number): CpuTimes {
  return ticksMs(statFields(`/proc/${pid}/stat`), 11);
}

export interface CpuTimes {
  userMs: number;
  systemMs: number;
}

const addTimes = (a: CpuTimes, b: CpuTimes): CpuTimes => ({ userMs: a.userMs + b.userMs, systemMs: a.systemMs + b.systemMs });
const NO_TIME: CpuTimes = { userMs: 0, systemMs: 0 };

/** The children of every thread of `pid` (a cluster primary or tsx may start them from any). */
export function childrenOf(pid: number): number[] {
  const children = new Set<number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(/\s+/).filter(Boolean)) children.add(Number(child));
    }
  } catch {
    // exited meanwhile
  }
  return [...children];
}

/** `pid` and every process below it. */
export function processTreePids(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTreePids)];
}

/** The summed CPU times of `pids`; a process that has exited meanwhile counts nothing. */
function cpuTimesOf(pids: number[]): CpuTimes {
  return pids.reduce((total, pid) => {
    try {
      return addTimes(total, cpuTimes(pid));
    } catch {
      return total;
    }
  }, NO_TIME);
}

/**
 * CPU time of every process whose command name is `name` (e.g. "postgres": the server and
 * all its backends), with what their exited children used: PostgreSQL's backends end with
 * their connections, and the server process counts them once it has waited for them.
 */
function cpuTimesByName(name: string): CpuTimes {
  let total = NO_TIME;
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== name) continue;
      const fields = statFields(`/proc/${pid}/stat`);
      total = addTimes(addTimes(total, ticksMs(fields, 11)), ticksMs(fields, 13));
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

interface CpuUs {
  userUs: number;
  systemUs: number;
}
export interface CpuPerOperation {
  server: CpuUs & { mainThreadUs: number };
  postgres: CpuUs;
}

/** "server 1,850 µs (its main thread 1,076), PostgreSQL 620 µs (user + kernel)" */
export const describeCpu = ({ server, postgres }: CpuPerOperation) =>
  `server ${(server.userUs + server.systemUs).toLocaleString("en")} µs (its main thread ${server.mainThreadUs.toLocaleString("en")}), PostgreSQL ${(postgres.userUs + postgres.systemUs).toLocaleString("en")} µs (user + kernel)`;

/**
 * CPU per operation of a server's process tree (its workers and signing threads included),
 * of its main thread alone (what one event loop can do is at most 1 s / that), and of
 * PostgreSQL, over a measurement: where a throughput's cost lands. PostgreSQL serves only
 * the server under measurement then. wrk's own CPU is not counted (a TLS client costs it more).
 */
export function cpuPerOperation(serverPid: number): (operations: number) => CpuPerOperation {
  const sample = () => ({
    server: cpuTimesOf(processTreePids(serverPid)),
    mainThread: ticksMs(statFields(`/proc/${serverPid}/task/${serverPid}/stat`), 11),
    postgres: cpuTimesByName("postgres"),
  });
  const start = sample();
  return (operations) => {
    const end = sample();
    const us = (ms: number) => Math.round((ms * 1000) / Math.max(1, operations));
    const per = (now: CpuTimes, then: CpuTimes): CpuUs => ({ userUs: us(now.userMs - then.userMs), systemUs: us(now.systemMs - then.systemMs) });
    const mainThread = per(end.mainThread, start.mainThread);
    return { server: { ...per(end.server, start.server), mainThreadUs: mainThread.userUs + mainThread.systemUs }, postgres: per(end.postgres, start.postgres) };
  };
}
