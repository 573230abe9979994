// Ours: stored issuance with the P-256 intermediate on a SoftHSM token and PostgreSQL.
//  - in process: runtime.authority.issue({csr: parseCsr(pem), profile, requester}), 32 in
//    flight, 200 distinct openssl-made CSRs (parsed every time, as the API does);
//  - over the HTTPS API, wrk POSTing /v1/certificates with the admin token, 32 connections,
//    three ways: apps/api as one process (PKI_API_WORKERS=1); apps/api with one worker per
//    core (the default on PostgreSQL); and the all-in-one `npm start` on PostgreSQL (every
//    role in one process, the API in its workers), which is what a new user measures.
// Each counts the rows that reached `valid` in PostgreSQL during the measurement.
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import pg from "pg";
import { parseCsr } from "@pki/x509";
import type { Group, Result } from "../lib/types.ts";
import { createCa, childEnv, type BenchCa } from "../lib/ca.ts";
import { makeCsrs } from "../lib/csrs.ts";
import { attempt, timedLoop } from "../lib/measure.ts";
import { cpuPerOperation, describeCpu, freePort, start } from "../lib/proc.ts";
import { httpsCall, waitForHttps } from "../lib/https.ts";
import { failures, wrk } from "../lib/wrk.ts";
import { REPO_ROOT, npmStartArgs } from "../lib/repo.ts";

export async function countValid(dbUrl: string): Promise<number> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    return Number((await c.query("SELECT count(*) AS n FROM certificates WHERE status = 'valid'")).rows[0].n);
  } finally {
    await c.end();
  }
}

async function inProcess(ctx: Parameters<Group>[0], ca: BenchCa, csrs: string[]): Promise<Result> {
  let i = 0;
  const before = await countValid(ca.dbUrl);
  const r = await timedLoop(() => ca.runtime.authority.issue({ csr: parseCsr(csrs[i++ % csrs.length]!), profile: "mtls", requester: { kind: "operator", actor: "bench" } }), {
    seconds: ctx.seconds,
    warmupSeconds: ctx.warmupSeconds,
    concurrency: 32,
    maxOps: 2_000_000,
  });
  const stored = (await countValid(ca.dbUrl)) - before;
  if (r.errors > 0) ctx.log(`in-process issuance: ${r.errors} errors, first: ${r.firstError}`);
  return {
    id: "ours.issue.inproc",
    label: "stored issuance, in process (authority.issue, 32 in flight)",
    value: r.rate,
    unit: "certs/s",
    details: { p50: r.p50, p99: r.p99, errors: r.errors, ops: r.ops, seconds: r.seconds, rowsValidAfterWarmup: stored },
  };
}

export interface RunningApi {
  url: string;
  pid: number;
  rootPem: string;
  stop: () => Promise<number | null>;
}

/** How the HTTPS API is run: apps/api alone with a worker count, or the all-in-one server. */
export type ApiShape = { app: "api"; workers: number | "auto" } | { app: "server" };

/** apps/api (or the all-in-one server) as a child process on the CA's data dir and database (`nodeArgs`: e.g. --cpu-prof), or why it cannot run. */
export async function startApiProcess(ca: BenchCa, nodeArgs: string[] = [], shape: ApiShape = { app: "api", workers: 1 }): Promise<RunningApi | string> {
  const main = path.join(REPO_ROOT, "apps/api/src/main.ts");
  if (!existsSync(main)) return `${path.relative(REPO_ROOT, main)} is not in the tree yet`;
  const port = await freePort();
  const httpPort = await freePort();
  const workers: Record<string, string> = shape.app === "api" ? { PKI_API_WORKERS: String(shape.workers) } : {};
  // the all-in-one exactly as `npm start` runs it (its flags and entry), apps/api as compose does
  const entry = shape.app === "api" ? ["--import", "tsx", main] : npmStartArgs();
  const server = start(process.execPath, [...nodeArgs, ...entry], {
    cwd: REPO_ROOT,
    forks: true, // the API workers
    env: childEnv(ca, { PKI_API_PORT: String(port), PKI_HTTP_PORT: String(httpPort), PKI_PUBLIC_URL: `http://127.0.0.1:${httpPort}`, ...workers }),
  });
  const rootPem = readFileSync(path.join(ca.dataDir, "root.pem"), "utf8");
  const url = `https://127.0.0.1:${port}`;
  try {
    await waitForHttps(`${url}/openapi.json`, rootPem, { timeoutMs: 60_000, alive: () => server.child.exitCode === null });
  } catch (error) {
    await server.stop();
    return `${shape.app === "api" ? "apps/api" : "npm start"} did not start: ${(error as Error).message}; ${server.output().slice(-300)}`;
  }
  return { url, pid: server.child.pid!, rootPem, stop: server.stop };
}

const HTTPS_ROWS: Array<{ id: string; label: string; shape: ApiShape }> = [
  { id: "ours.issue.api", label: "stored issuance, HTTPS API (apps/api, 1 process, 32 connections)", shape: { app: "api", workers: 1 } },
  { id: "ours.issue.api.workers", label: `stored issuance, HTTPS API (apps/api, one worker per core: ${availableParallelism()}, 32 connections)`, shape: { app: "api", workers: "auto" } },
  { id: "ours.issue.allinone", label: "stored issuance, HTTPS API of the all-in-one `npm start` on PostgreSQL (32 connections)", shape: { app: "server" } },
];

async function overApi(ctx: Parameters<Group>[0], ca: BenchCa, csrs: string[], row: (typeof HTTPS_ROWS)[number]): Promise<Result> {
  // BENCH_ISSUE_PROFILE_DIR=<dir>: V8 CPU profiles of the API processes, written when they stop
  const profileDir = process.env.BENCH_ISSUE_PROFILE_DIR;
  const api = await startApiProcess(ca, profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, row.id)}`] : [], row.shape);
  if (typeof api === "string") return { id: row.id, label: row.label, unavailable: api };
  try {
    const headers = { "Content-Type": "application/json", Authorization: `Bearer ${ca.adminToken}` };
    const probe = await httpsCall(`${api.url}/v1/certificates`, api.rootPem, {
      method: "POST",
      body: JSON.stringify({ csr: csrs[0], profile: "mtls" }),
      headers: { authorization: headers.Authorization },
    });
    if (probe.status !== 201) throw new Error(`POST /v1/certificates answered ${probe.status}: ${probe.text.slice(0, 300)}`);
    const requests = csrs.map((csr) => ({ method: "POST" as const, path: "/v1/certificates", body: Buffer.from(JSON.stringify({ csr, profile: "mtls" })) }));
    await wrk({ url: `${api.url}/`, requests, headers, seconds: ctx.warmupSeconds, connections: 32 });
    const before = await countValid(ca.dbUrl);
    const cpuSince = cpuPerOperation(api.pid);
    const r = await wrk({ url: `${api.url}/`, requests, headers, seconds: ctx.seconds, connections: 32, maxPerThread: 2_000_000 });
    const cpu = cpuSince(r.requests);
    const stored = (await countValid(ca.dbUrl)) - before;
    return {
      id: row.id,
      label: row.label,
      value: r.rps,
      unit: "certs/s",
      details: {
        ...r.latency,
        errors: failures(r),
        requests: r.requests,
        seconds: r.seconds,
        rowsStored: stored,
        cpuPerCertificate: cpu,
        note: `${stored} rows stored for ${r.requests} answers; CPU per certificate: ${describeCpu(cpu)}`,
      },
    };
  } finally {
    await api.stop();
  }
}

const group: Group = async (ctx) => {
  const csrs = makeCsrs(ctx.tmp, 200);
  const ca = await createCa(ctx.pgUrl, ctx.tmp);
  try {
    const results: Result[] = [];
    results.push(await attempt("ours.issue.inproc", "stored issuance, in process", ctx.log, () => inProcess(ctx, ca, csrs)));
    for (const row of HTTPS_ROWS) results.push(await attempt(row.id, row.label, ctx.log, () => overApi(ctx, ca, csrs, row)));
    return results;
  } finally {
    await ca.cleanup();
  }
};
export default group;
