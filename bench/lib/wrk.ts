// Load generation with wrk (Debian package), from a separate process, loopback only,
// bounded by a fixed duration and (optionally) a response count per thread.
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";

const LUA = path.join(path.dirname(fileURLToPath(import.meta.url)), "wrk.lua");

export interface WrkRequest {
  method: "GET" | "POST";
  path: string;
  body?: Buffer;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** milliseconds */
  latency: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
}

export interface WrkOptions {
  url: string;
  /** the request mix; empty means GET url */
  requests?: WrkRequest[];
  requestsFile?: string;
  headers?: Record<string, string>;
  seconds: number;
  connections?: number;
  threads?: number;
  /** responses per thread after which wrk stops */
  maxPerThread?: number;
  timeoutSeconds?: number;
  /** each connection waits this long between requests: a paced load rather than a saturating one */
  delayMs?: number;
}

export function writeRequests(file: string, requests: WrkRequest[]): string {
  writeFileSync(file, `${requests.map((r) => `${r.method}\t${r.path}\t${r.body ? r.body.toString("hex") : ""}`).join("\n")}\n`);
  return file;
}

export async function wrk(options: WrkOptions): Promise<WrkResult> {
  const url = new URL(options.url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) throw new Error(`refusing to load anything but loopback: ${options.url}`);
  let requestsFile = options.requestsFile;
  let ownFile: string | undefined;
  if (!requestsFile && options.requests?.length) requestsFile = ownFile = writeRequests(path.join(process.env.BENCH_TMP ?? tmpdir(), `wrk-${process.pid}-${Date.now()}.txt`), options.requests);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_REQUESTS: requestsFile ?? "",
    BENCH_HEADERS: Object.entries(options.headers ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join("|"),
    BENCH_MAX: String(options.maxPerThread ?? 0),
    BENCH_DELAY_MS: String(options.delayMs ?? 0),
  };
  const args = ["-t", String(options.threads ?? 1), "-c", String(options.connections ?? 32), "-d", `${options.seconds}s`, "--timeout", `${options.timeoutSeconds ?? 10}s`, "-s", LUA, options.url];
  const child = spawn("wrk", args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), (options.seconds + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(killer);
  if (ownFile) rmSync(ownFile, { force: true });
  const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (!line) throw new Error(`wrk exited ${code} without a result: ${out.slice(-1500)}`);
  const raw = JSON.parse(line.slice("BENCH_JSON ".length)) as { requests: number; duration_us: number; errors: WrkResult["errors"]; latency_us: Record<string, number> };
  const seconds = raw.duration_us / 1e6;
  const ms = (us: number | undefined) => (us ?? 0) / 1000;
  return {
    requests: raw.requests,
    seconds,
    rps: raw.requests / seconds,
    errors: raw.errors,
    latency: { p50: ms(raw.latency_us.p50), p90: ms(raw.latency_us.p90), p99: ms(raw.latency_us.p99), p999: ms(raw.latency_us.p999), max: ms(raw.latency_us.max), mean: ms(raw.latency_us.mean) },
  };
}

/** Requests that did not get a 2xx/3xx answer or failed at the socket. */
export const failures = (r: WrkResult) => r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
