// Peers from Debian's golang-cfssl:
//  - `cfssl serve` with its PostgreSQL certdb (tables created from cfssl's certdb/pg
//    migration, below), software P-256 CA: stored issuance, wrk POSTing
//    /api/v1/cfssl/sign with 200 distinct openssl-made P-256 CSRs; every response checked
//    for success afterwards by counting stored rows.
//  - `cfssl ocspserve` answering from a file of pre-signed responses (100k certificates;
//    10k in --quick), POST and GET, with the request mix spread over those certificates.
import { writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Group, Result } from "../lib/types.ts";
import { cpuPerOperation, describeCpu, freePort, start, waitForHttp } from "../lib/proc.ts";
import { createSoftCa, randomSerial, type SoftCa } from "../lib/softca.ts";
import { failures, wrk, type WrkRequest } from "../lib/wrk.ts";
import { createDatabase } from "../lib/ca.ts";
import { makeCsrs } from "../lib/csrs.ts";
import { attempt } from "../lib/measure.ts";
import { ocspGetPath } from "../lib/der.ts";

// cfssl certdb/pg/migrations/001_CreateCertificates.sql (the schema the 2016 cfssl in
// Debian writes to: INSERT INTO certificates (serial_number, authority_key_identifier,
// ca_label, status, reason, expiry, revoked_at, pem)).
const CFSSL_PG_SCHEMA = `
CREATE TABLE certificates (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  ca_label                 bytea,
  status                   bytea NOT NULL,
  reason                   int,
  expiry                   timestamptz,
  revoked_at               timestamptz,
  pem                      bytea NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  body                     bytea NOT NULL,
  expiry                   timestamptz,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier) REFERENCES certificates(serial_number, authority_key_identifier)
);`;

async function issuance(ctx: Parameters<Group>[0], ca: SoftCa): Promise<Result> {
  const db = await createDatabase(ctx.pgUrl);
  try {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(CFSSL_PG_SCHEMA);
    const config = path.join(ctx.tmp, "cfssl-config.json");
    writeFileSync(config, JSON.stringify({ signing: { default: { expiry: "24h", usages: ["digital signature", "key encipherment", "server auth", "client auth"] } } }));
    const dbConfig = path.join(ctx.tmp, "cfssl-db.json");
    const dsn = new URL(db.url);
    dsn.searchParams.set("sslmode", "disable");
    writeFileSync(dbConfig, JSON.stringify({ driver: "postgres", data_source: dsn.toString() }));
    const port = await freePort();
    const server = start("cfssl", ["serve", "-address", "127.0.0.1", "-port", String(port), "-ca", ca.certPath, "-ca-key", ca.keyPath, "-config", config, "-db-config", dbConfig, "-loglevel", "4"]);
    try {
      // (this cfssl has no health endpoint: any HTTP answer means it listens)
      await waitForHttp(`http://127.0.0.1:${port}/api/v1/cfssl/sign`, { alive: () => server.child.exitCode === null, status: "any", timeoutMs: 30_000 });
      const csrs = makeCsrs(ctx.tmp, 200);
      const probe = await fetch(`http://127.0.0.1:${port}/api/v1/cfssl/sign`, { method: "POST", body: JSON.stringify({ certificate_request: csrs[0] }) });
      const probeJson = (await probe.json()) as { success: boolean; errors?: unknown };
      if (!probeJson.success) throw new Error(`cfssl sign failed: ${JSON.stringify(probeJson.errors)}`);
      const requests = csrs.map((csr) => ({ method: "POST" as const, path: "/api/v1/cfssl/sign", body: Buffer.from(JSON.stringify({ certificate_request: csr })) }));
      const headers = { "Content-Type": "application/json" };
      await wrk({ url: `http://127.0.0.1:${port}/`, requests, headers, seconds: ctx.warmupSeconds });
      const before = Number((await client.query("SELECT count(*) AS n FROM certificates")).rows[0].n);
      const cpuSince = cpuPerOperation(server.child.pid!);
      const r = await wrk({ url: `http://127.0.0.1:${port}/`, requests, headers, seconds: ctx.seconds, maxPerThread: 1_000_000 });
      const cpu = cpuSince(r.requests);
      await new Promise((res) => setTimeout(res, 300));
      const after = Number((await client.query("SELECT count(*) AS n FROM certificates")).rows[0].n);
      await client.end();
      const stored = after - before;
      return {
        id: "peer.cfssl.issue",
        label: "cfssl serve + PostgreSQL certdb, stored issuance (software P-256 key)",
        value: r.rps,
        unit: "certs/s",
        details: {
          ...r.latency,
          errors: failures(r),
          requests: r.requests,
          seconds: r.seconds,
          rowsStoredDuringMeasurement: stored,
          cpuPerCertificate: cpu,
          note: `${stored} rows stored for ${r.requests} answers; CPU per certificate: ${describeCpu(cpu)}`,
        },
      };
    } finally {
      await server.stop();
    }
  } finally {
    await db.drop();
  }
}

async function ocspserve(ctx: Parameters<Group>[0], ca: SoftCa): Promise<Result[]> {
  const n = ctx.quick ? 10_000 : 100_000;
  const serials = Array.from({ length: n }, randomSerial);
  const t = performance.now();
  const lines = (await ca.ocspResponses(serials)).map((r) => r.toString("base64"));
  const file = path.join(ctx.tmp, "responses.b64");
  writeFileSync(file, `${lines.join("\n")}\n`);
  ctx.log(`${n} pre-signed responses for cfssl ocspserve in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const port = await freePort();
  const server = start("cfssl", ["ocspserve", "-address", "127.0.0.1", "-port", String(port), "-responses", file, "-loglevel", "4"]);
  const results: Result[] = [];
  try {
    const sample = Array.from({ length: 5000 }, (_, i) => serials[Math.floor((i * n) / 5000)]!);
    const post = sample.map((s) => ({ method: "POST" as const, path: "/", body: ca.ocspRequest(s) }));
    const get = sample.map((s) => ({ method: "GET" as const, path: ocspGetPath("", ca.ocspRequest(s)) }));
    const url = `http://127.0.0.1:${port}/`;
    // it parses every response before it listens: 100k take a while on a busy machine
    for (let i = 0; i < 1200; i++) {
      try {
        const res = await fetch(url, { method: "POST", body: new Uint8Array(post[0]!.body), headers: { "Content-Type": "application/ocsp-request" } });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status === 200 && body.length > 100) break;
        throw new Error(`cfssl ocspserve answered ${res.status}, ${body.length} bytes`);
      } catch (error) {
        if (server.child.exitCode !== null || i === 1199) throw new Error(`cfssl ocspserve is not answering: ${(error as Error).message}; ${server.output().slice(-500)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const headers = { "Content-Type": "application/ocsp-request" };
    // Debian's cfssl (a 2016 snapshot) base64-decodes the whole GET path, leading "/"
    // included, and turns "+" into spaces: it refuses every GET. Checked here, not assumed.
    const getProbe = await fetch(`http://127.0.0.1:${port}${get[0]!.path}`);
    await getProbe.arrayBuffer();
    const measured: Array<readonly [string, WrkRequest[]]> = [["peer.cfssl.ocsp.post", post]];
    if (getProbe.status === 200) measured.push(["peer.cfssl.ocsp.get", get]);
    else
      results.push({
        id: "peer.cfssl.ocsp.get",
        label: "cfssl ocspserve GET",
        unavailable: `Debian's cfssl ocspserve answers ${getProbe.status} to every RFC 6960 GET (it decodes the path with its leading '/')`,
      });
    for (const [id, reqs] of measured) {
      results.push(
        await attempt(id, id, ctx.log, async () => {
          await wrk({ url, requests: [...reqs], headers, seconds: ctx.warmupSeconds });
          const r = await wrk({ url, requests: [...reqs], headers, seconds: ctx.seconds, maxPerThread: 2_000_000 });
          return {
            id,
            label: `cfssl ocspserve, pre-signed, ${id.endsWith("post") ? "POST" : "GET"}, ${n.toLocaleString("en-US")} certificates`,
            value: r.rps,
            unit: "req/s",
            details: { ...r.latency, errors: failures(r), requests: r.requests, seconds: r.seconds },
          };
        }),
      );
    }
  } finally {
    await server.stop();
  }
  return results;
}

const group: Group = async (ctx) => {
  const ca = createSoftCa(ctx.tmp);
  const results: Result[] = [];
  results.push(await attempt("peer.cfssl.issue", "cfssl serve + PostgreSQL", ctx.log, () => issuance(ctx, ca)));
  const ocsp = await attempt("peer.cfssl.ocsp.post", "cfssl ocspserve", ctx.log, () => ocspserve(ctx, ca));
  results.push(...(Array.isArray(ocsp) ? ocsp : [ocsp]));
  return results;
};
export default group;
