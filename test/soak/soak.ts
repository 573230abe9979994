// `npm run soak`: the all-in-one server under a steady mixed load for a bounded time
// (SOAK_SECONDS, default 180), on loopback, against a real PostgreSQL and SoftHSM token:
// issuance, renewals over mTLS, revocations and OCSP lookups at fixed rates. It exits 1
// unless no request failed, memory stayed flat, no token session or database connection
// leaked, and every certificate issued is in the inventory and answered by OCSP.
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { Agent, request } from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicOCSPResponse, OCSPResponse } from "@peculiar/asn1-ocsp";
import { caCertificateFacts, certIdFor } from "@pki/x509";
import * as der from "@pki/der";
import { REPO_ROOT, testEnv } from "../support/harness.ts";
import { freePort, opensslCsr } from "../support/tools.ts";
import { childEnv, testSettings } from "../support/settings.ts";

const SECONDS = testSettings.soakSeconds;
const RATE = { issue: 20, renew: 5, revoke: 2, ocsp: 100 }; // per second

const env = await testEnv({ database: "postgres" });
const httpPort = await freePort();
const apiPort = await freePort();
const serverEnv = {
  ...env.env,
  PKI_HTTP_PORT: String(httpPort),
  PKI_API_PORT: String(apiPort),
  PKI_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
  PKI_BOOTSTRAP_ADMIN_TOKEN: `soak-admin-${randomBytes(32).toString("base64url")}`,
  PKI_LOG_LEVEL: "warn",
};
const server = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/server/src/main.ts")], { cwd: REPO_ROOT, env: childEnv(serverEnv), stdio: ["ignore", "pipe", "inherit"] });
let out = "";
server.stdout!.on("data", (d) => (out += d));
for (let i = 0; !out.includes("issuing API:"); i++) {
  if (i > 600 || server.exitCode !== null) throw new Error(`server did not start:\n${out}`);
  await new Promise((r) => setTimeout(r, 100));
}

const rootPem = readFileSync(path.join(env.dataDir, "root.pem"));
const agent = new Agent({ keepAlive: true, maxSockets: 32, ca: rootPem });
interface Res {
  status: number;
  body: string;
}
function api(method: string, urlPath: string, options: { token?: string; body?: unknown; cert?: string; key?: string } = {}): Promise<Res> {
  const tls = options.cert ? { cert: options.cert, key: options.key, ca: rootPem } : { agent };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: apiPort,
        path: urlPath,
        method,
        servername: "localhost",
        ...tls,
        headers: { "content-type": "application/json", ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
      },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

const admin = serverEnv.PKI_BOOTSTRAP_ADMIN_TOKEN;
const provisioner = JSON.parse((await api("POST", "/v1/provisioners", { token: admin, body: { name: "soak", profiles: ["mtls"], names: ["DNS:.soak.example"], maxTtlSeconds: 86_400 } })).body)
  .token as string;
const csrs = Array.from({ length: 8 }, (_, i) => opensslCsr({ subject: `/CN=svc${i}.soak.example` }));
const issuer = caCertificateFacts(
  Buffer.from(
    readFileSync(path.join(env.dataDir, "chain.pem"), "utf8")
      .split("-----END CERTIFICATE-----")[0]!
      .replace(/-----BEGIN CERTIFICATE-----|\s/g, ""),
    "base64",
  ),
);

const live: Array<{ serial: string; cert: string; key: string }> = [];
const revoked = new Set<string>();
const issued: string[] = [];
const failures: string[] = [];
const rss: number[] = [];
const counts = { issue: 0, renew: 0, revoke: 0, ocsp: 0 };

const check = (what: string, res: Res, expected: number) => {
  if (res.status !== expected) failures.push(`${what}: ${res.status} ${res.body.slice(0, 200)}`);
  return res.status === expected;
};

async function issueOne() {
  const csr = csrs[counts.issue % csrs.length]!;
  const res = await api("POST", "/v1/certificates", { token: provisioner, body: { csr: csr.csrPem, ttlSeconds: 3600 } });
  counts.issue++;
  if (!check("issue", res, 201)) return;
  const json = JSON.parse(res.body);
  issued.push(json.serial);
  live.push({ serial: json.serial, cert: json.certificate + json.chain.join(""), key: csr.keyPem });
}

async function renewOne() {
  const current = live.shift();
  if (!current) return;
  const res = await api("POST", "/v1/certificates/renew", { cert: current.cert, key: current.key, body: {} });
  counts.renew++;
  if (!check("renew", res, 201)) return;
  const json = JSON.parse(res.body);
  issued.push(json.serial);
  live.push({ serial: json.serial, cert: json.certificate + json.chain.join(""), key: current.key });
}

async function revokeOne() {
  const victim = live.shift();
  if (!victim) return;
  const res = await api("POST", `/v1/certificates/${victim.serial}/revoke`, { token: admin, body: { reason: "superseded" } });
  counts.revoke++;
  if (check("revoke", res, 200)) revoked.add(victim.serial);
}

function ocspRequest(serial: string): Buffer {
  return der.sequence(der.sequence(der.sequence(der.sequence(certIdFor("sha1", issuer, serial)))));
}

async function ocspStatus(serial: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/ocsp/${encodeURIComponent(ocspRequest(serial).toString("base64"))}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return `http ${res.status}`;
  const response = AsnConvert.parse(body, OCSPResponse);
  if (response.responseStatus !== 0 || !response.responseBytes) return `responseStatus ${response.responseStatus}`;
  const basic = AsnConvert.parse(response.responseBytes.response.buffer, BasicOCSPResponse);
  const status = basic.tbsResponseData.responses[0]!.certStatus;
  return status.good !== undefined ? "good" : status.revoked ? "revoked" : "unknown";
}

async function ocspOne() {
  const serial = issued[Math.floor(Math.random() * issued.length)];
  if (!serial) return;
  counts.ocsp++;
  const status = await ocspStatus(serial);
  if (status !== "good" && status !== "revoked") failures.push(`ocsp ${serial}: ${status}`);
}

async function metric(name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name) && l.includes(labels));
  return Number(line?.split(" ").at(-1));
}

const start = Date.now();
const pending = new Set<Promise<unknown>>();
const fire = (fn: () => Promise<void>, n: number) => {
  for (let i = 0; i < n; i++) {
    const p = fn()
      .catch((e: Error) => failures.push(`${fn.name}: ${e.message}`))
      .finally(() => pending.delete(p));
    pending.add(p);
  }
};
for (let second = 0; second < SECONDS; second++) {
  fire(issueOne, RATE.issue);
  fire(renewOne, RATE.renew);
  fire(revokeOne, RATE.revoke);
  fire(ocspOne, RATE.ocsp);
  if (second % 10 === 0) rss.push(await metric("process_resident_memory_bytes"));
  const next = start + (second + 1) * 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
}
await Promise.all(pending);
await new Promise((r) => setTimeout(r, 2000)); // let in-flight signing and group commits settle

// Every certificate issued is in the inventory and answered by OCSP with the right status.
for (const serial of issued) {
  const res = await api("GET", `/v1/certificates/${serial}`, { token: admin });
  if (!check(`inventory ${serial}`, res, 200)) continue;
  const status = await ocspStatus(serial);
  const expected = revoked.has(serial) ? "revoked" : "good";
  if (status !== expected) failures.push(`ocsp ${serial}: ${status}, expected ${expected}`);
}

const sessions = { open: await metric("pki_token_sessions", 'state="open"'), idle: await metric("pki_token_sessions", 'state="idle"'), waiting: await metric("pki_token_sessions", 'state="waiting"') };
const pool = { total: await metric("pki_database_pool_connections", 'state="total"'), waiting: await metric("pki_database_pool_connections", 'state="waiting"') };
if (sessions.idle !== sessions.open || sessions.waiting !== 0) failures.push(`token sessions leaked: ${JSON.stringify(sessions)}`);
if (pool.waiting !== 0 || pool.total > 10) failures.push(`database connections leaked: ${JSON.stringify(pool)}`);
// RSS moves with garbage collection: compare averages of samples, not two single points.
const average = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const third = Math.max(1, Math.floor(rss.length / 3));
const warm = average(rss.slice(third, 2 * third));
const end = average(rss.slice(-third));
const growth = (end - warm) / warm;
if (growth > 0.25) failures.push(`memory grew ${(growth * 100).toFixed(0)}% from the middle third of the run to the last (${(warm / 1e6).toFixed(0)} -> ${(end / 1e6).toFixed(0)} MB)`);

server.kill("SIGTERM");
const [code] = await once(server, "exit");
if (code !== 0) failures.push(`server exited ${code} on SIGTERM`);
await env.cleanup();

console.log(
  JSON.stringify(
    {
      seconds: SECONDS,
      requests: counts,
      certificates: issued.length,
      revoked: revoked.size,
      rssMB: rss.map((r) => Math.round(r / 1e6)),
      memoryGrowth: `${(growth * 100).toFixed(1)}%`,
      sessions,
      pool,
      failures: failures.length,
    },
    null,
    1,
  ),
);
const byKind = new Map<string, number>();
for (const f of failures) byKind.set(f.replace(/[0-9a-f]{34}/g, "<serial>").slice(0, 120), (byKind.get(f.replace(/[0-9a-f]{34}/g, "<serial>").slice(0, 120)) ?? 0) + 1);
for (const [kind, n] of byKind) console.error(`FAIL x${n} ${kind}`);
console.log(failures.length === 0 ? "soak: passed" : `soak: ${failures.length} failures`);
process.exit(failures.length === 0 ? 0 : 1);
