// ApacheBench (apache2-utils) for responders that close the connection after every answer
// and hang on idle connections (openssl ocsp): one body repeated, bounded by -t and -n.
import { writeFileSync } from "node:fs";
import { run } from "./proc.ts";

export interface AbResult {
  requests: number;
  rps: number;
  /** connect/receive/exception failures and non-2xx; length differences are not failures (ECDSA signatures vary in length) */
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

export function ab(options: { url: string; body: Buffer; contentType: string; seconds: number; concurrency: number; maxRequests: number; bodyFile: string }): AbResult {
  const url = new URL(options.url);
  if (url.hostname !== "127.0.0.1") throw new Error("loopback only");
  writeFileSync(options.bodyFile, options.body);
  const r = run("ab", ["-q", "-t", String(options.seconds), "-n", String(options.maxRequests), "-c", String(options.concurrency), "-p", options.bodyFile, "-T", options.contentType, options.url], {
    timeoutMs: (options.seconds + 30) * 1000,
    allowFail: true,
  });
  const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? NaN);
  const requests = num(/Complete requests:\s+(\d+)/);
  if (!Number.isFinite(requests)) throw new Error(`ab gave no result: ${(r.stderr || r.stdout).slice(-800)}`);
  const m = /\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)/.exec(r.stdout);
  const non2xx = num(/Non-2xx responses:\s+(\d+)/);
  const errors = (m ? Number(m[1]) + Number(m[2]) + Number(m[4]) : 0) + (Number.isFinite(non2xx) ? non2xx : 0);
  return { requests, rps: num(/Requests per second:\s+([\d.]+)/), errors, p50: num(/\s50%\s+(\d+)/), p99: num(/\s99%\s+(\d+)/), max: num(/100%\s+(\d+)/) };
}
