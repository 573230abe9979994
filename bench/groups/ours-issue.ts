// Ours: stored issuance with the P-256 intermediate on a SoftHSM token and PostgreSQL.
//  - in process: runtime.authority.issue({csr: parseCsr(pem), profile, requester}), 32 in
//    flight, 200 distinct openssl-made CSRs (parsed every time, as the API does);
//  - over the HTTPS API (apps/api as its own process, as production runs it), when
//    apps/api exists: wrk POSTing /v1/certificates with the admin token, 32 connections.
// Both count the rows that reached `valid` in PostgreSQL during the measurement.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { parseCsr } from "@pki/x509";
import type { Group, Result } from "../lib/types.ts";
import { createCa, childEnv, type BenchCa } from "../lib/ca.ts";
import { makeCsrs } from "../lib/csrs.ts";
import { attempt, timedLoop } from "../lib/measure.ts";
import { freePort, start } from "../lib/proc.ts";
import { httpsCall, waitForHttps } from "../lib/https.ts";
import { failures, wrk } from "../lib/wrk.ts";
import { REPO_ROOT } from "../lib/repo.ts";

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
  rootPem: string;
  stop: () => Promise<number | null>;
}

/** apps/api as a child process on the CA's data dir and database, or why it cannot run. */
export async function startApiProcess(ca: BenchCa): Promise<RunningApi | string> {
  const main = path.join(REPO_ROOT, "apps/api/src/main.ts");
  if (!existsSync(main)) return "apps/api is not in the tree yet";
  const port = await freePort();
  const httpPort = await freePort();
  const server = start(process.execPath, ["--import", "tsx", main], { cwd: REPO_ROOT, env: childEnv(ca, { PKI_API_PORT: String(port), PKI_HTTP_PORT: String(httpPort) }) });
  const rootPem = readFileSync(path.join(ca.dataDir, "root.pem"), "utf8");
  const url = `https://127.0.0.1:${port}`;
  try {
    await waitForHttps(`${url}/openapi.json`, rootPem, { timeoutMs: 60_000, alive: () => server.child.exitCode === null });
  } catch (error) {
    await server.stop();
    return `apps/api did not start: ${(error as Error).message}; ${server.output().slice(-300)}`;
  }
  return { url, rootPem, stop: server.stop };
}

async function overApi(ctx: Parameters<Group>[0], ca: BenchCa, csrs: string[]): Promise<Result> {
  const api = await startApiProcess(ca);
  if (typeof api === "string") return { id: "ours.issue.api", label: "stored issuance, HTTPS API", unavailable: api };
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
    const r = await wrk({ url: `${api.url}/`, requests, headers, seconds: ctx.seconds, connections: 32, maxPerThread: 2_000_000 });
    const stored = (await countValid(ca.dbUrl)) - before;
    return {
      id: "ours.issue.api",
      label: "stored issuance, HTTPS API (apps/api process, 32 connections)",
      value: r.rps,
      unit: "certs/s",
      details: { ...r.latency, errors: failures(r), requests: r.requests, seconds: r.seconds, rowsStored: stored, note: `${stored} rows stored for ${r.requests} answers` },
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
    results.push(await attempt("ours.issue.api", "stored issuance, HTTPS API", ctx.log, () => overApi(ctx, ca, csrs)));
    return results;
  } finally {
    await ca.cleanup();
  }
};
export default group;
