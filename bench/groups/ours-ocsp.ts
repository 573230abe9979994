// Ours: OCSP and revocation status.
//  1. A CA on SoftHSM + PostgreSQL with 100,000 seeded certificates (20,000 in --quick).
//     The revocation role as production runs it (apps/crl-publisher's
//     createCrlPublisherRole, in this process) pre-signs the first 2,000 (SHA-1 and SHA-256
//     CertIDs) on the token: that rate is a row. The rest get responses from
//     lib/bulkocsp.ts (its template re-signed with the same responder key, raw C_Sign), then
//     the role runs again (nothing left to sign) for the revocation figures.
//  2. apps/ocsp-responder as its own process: wrk POST /ocsp and GET /ocsp/{base64} over
//     5,000 distinct certificates spread across the inventory, 32 connections, in turns
//     with a bare node:http server sending the same response bytes (the ceiling).
//  3. OCSP POST while issuance runs flat out (the HTTPS API under wrk when apps/api
//     exists, else authority.issue in this process, 32 in flight): p99 of a paced load
//     (16 connections, 10 ms between requests), then of a saturating one (in the note).
//  4. Revocation visibility: certificates revoked one by one (revokeCertificate, as the API
//     does); time until the responder answers "revoked" (polled every 10 ms over HTTP) and
//     until the published delta CRL lists the serial (polled every 50 ms in the database).
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { certIdFor, parseCsr, toPem } from "@pki/x509";
import { revokeCertificate, systemClock } from "@pki/authority";
import type { Group, Result } from "../lib/types.ts";
import { createCa, childEnv, type BenchCa } from "../lib/ca.ts";
import { seedCertificates } from "../lib/seed.ts";
import { bulkPresign } from "../lib/bulkocsp.ts";
import { attempt, percentile, timedLoop } from "../lib/measure.ts";
import { cpuTimes, freePort, run, start, waitForHttp } from "../lib/proc.ts";
import { failures, wrk, type WrkRequest, type WrkResult } from "../lib/wrk.ts";
import { ocspGetPath, ocspRequest } from "../lib/der.ts";
import { REPO_ROOT } from "../lib/repo.ts";
import { startBareHttp } from "../lib/bare-http.ts";
import { makeCsrs } from "../lib/csrs.ts";
import { startApiProcess } from "./ours-issue.ts";

/** Turns of ours and the bare server, one after the other, for each method. */
const OCSP_TURNS = 3;

/** The run with the median rate. */
function medianRun(runs: WrkResult[]): WrkResult {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
}

type CpuUse = { userMs: number; systemMs: number; requests: number };
const cpuPerRequest = (use: CpuUse) => ({ userUsPerRequest: (use.userMs * 1000) / use.requests, systemUsPerRequest: (use.systemMs * 1000) / use.requests });
const describeCpu = (use: CpuUse) => {
  const { userUsPerRequest, systemUsPerRequest } = cpuPerRequest(use);
  return `${userUsPerRequest.toFixed(1)} µs user + ${systemUsPerRequest.toFixed(1)} µs kernel`;
};

/** certStatus of the single response for `certIdDer`: good, revoked, unknown, or undefined if absent. */
export function certStatusIn(response: Buffer, certIdDer: Buffer): "good" | "revoked" | "unknown" | undefined {
  const at = response.indexOf(certIdDer);
  if (at < 0) return undefined;
  const tag = response[at + certIdDer.length];
  return tag === 0x80 ? "good" : tag === 0xa1 ? "revoked" : tag === 0x82 ? "unknown" : undefined;
}

async function sampleSerials(dbUrl: string, count: number, where = "status = 'valid'"): Promise<string[]> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const total = Number((await c.query(`SELECT count(*) AS n FROM certificates WHERE ${where}`)).rows[0].n);
    const step = Math.max(1, Math.floor(total / count));
    const rows = await c.query(`SELECT serial FROM (SELECT serial, row_number() OVER (ORDER BY serial) AS r FROM certificates WHERE ${where}) t WHERE r % $1 = 0 LIMIT $2`, [step, count]);
    return rows.rows.map((r: { serial: string }) => r.serial);
  } finally {
    await c.end();
  }
}

const group: Group = async (ctx) => {
  const responderMain = path.join(REPO_ROOT, "apps/ocsp-responder/src/main.ts");
  const publisherIndex = path.join(REPO_ROOT, "apps/crl-publisher/src/index.ts");
  const ids = ["ours.ocsp.post", "ours.ocsp.get", "ours.ocsp.underload", "ours.revoke.ocsp", "ours.revoke.delta"];
  if (!existsSync(responderMain) || !existsSync(publisherIndex)) {
    return ids.map((id) => ({ id, label: id, unavailable: "apps/ocsp-responder or apps/crl-publisher is not in the tree yet" }));
  }
  const n = ctx.quick ? 20_000 : 100_000;
  const results: Result[] = [];
  const ca: BenchCa = await createCa(ctx.pgUrl, ctx.tmp, { PKI_LOG_LEVEL: "error" });
  let role: { stop(): Promise<void>; ocspSigner: { settled(): Promise<void>; sweep(full?: boolean): Promise<number> } } | undefined;
  try {
    // (a) pre-signing through our own path (OcspSigner in the revocation role), measured on
    //     a first batch; (b) the rest signed by bulkPresign with the same responder key.
    const first = ctx.quick ? 1000 : 2000;
    await seedCertificates(ca.dbUrl, { issuerId: ca.issuerId, count: first, revokedFraction: 0.02, prefix: "6a" });
    const { createCrlPublisherRole } = (await import("@pki/crl-publisher")) as typeof import("@pki/crl-publisher");
    const t = performance.now();
    role = await createCrlPublisherRole(ca.runtime);
    await role.ocspSigner.settled();
    while ((await role.ocspSigner.sweep(true)) > 0) {}
    const presignSeconds = (performance.now() - t) / 1000;
    results.push({
      id: "ours.ocsp.presign",
      label: `OCSP pre-signing, ${first.toLocaleString("en-US")} certificates × 2 CertID hashes (OcspSigner)`,
      value: (2 * first) / presignSeconds,
      unit: "responses/s",
      details: { seconds: presignSeconds, certificates: first, note: "includes the revocation role's start-up (responder certificate, first full CRL)" },
    });
    ctx.log(`${first} certificates pre-signed by OcspSigner in ${presignSeconds.toFixed(1)} s`);
    await role.stop();
    role = undefined;
    const seeded = await seedCertificates(ca.dbUrl, { issuerId: ca.issuerId, count: n - first, revokedFraction: 0, prefix: "6b" });
    const rest = await (async () => {
      const c = new pg.Client({ connectionString: ca.dbUrl });
      await c.connect();
      try {
        return (await c.query("SELECT serial FROM certificates WHERE serial LIKE '6b%'")).rows.map((r: { serial: string }) => r.serial);
      } finally {
        await c.end();
      }
    })();
    const bulk = await bulkPresign(ca, rest);
    ctx.log(`${n - first} more certificates seeded in ${seeded.seconds.toFixed(1)} s and pre-signed in bulk (raw C_Sign, same responder key) in ${bulk.seconds.toFixed(1)} s`);
    role = await createCrlPublisherRole(ca.runtime);
    await role.ocspSigner.settled();

    const port = await freePort();
    // BENCH_OCSP_PROFILE_DIR=<dir>: a V8 CPU profile of the responder, written when it stops
    const profile = process.env.BENCH_OCSP_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_OCSP_PROFILE_DIR}`] : [];
    const responder = start(process.execPath, [...profile, "--import", "tsx", responderMain], { cwd: REPO_ROOT, env: childEnv(ca, { PKI_HTTP_PORT: String(port) }) });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, { alive: () => responder.child.exitCode === null, timeoutMs: 120_000 });
      const issuer = ca.runtime.keyring.active();
      const serials = await sampleSerials(ca.dbUrl, 5000);
      const certIds = serials.map((s) => certIdFor("sha1", issuer.facts, s));
      const post: WrkRequest[] = certIds.map((id) => ({ method: "POST", path: "/ocsp", body: ocspRequest(id) }));
      const get: WrkRequest[] = certIds.map((id) => ({ method: "GET", path: ocspGetPath("/ocsp", ocspRequest(id)) }));
      const headers = { "Content-Type": "application/ocsp-request" };
      const url = `http://127.0.0.1:${port}/`;
      const probe = await fetch(`${url}ocsp`, { method: "POST", body: new Uint8Array(post[0]!.body!), headers });
      const probeBody = Buffer.from(await probe.arrayBuffer());
      if (probe.status !== 200 || certStatusIn(probeBody, certIds[0]!) !== "good") throw new Error(`the responder answered ${probe.status} without a good status for a seeded certificate`);
      // OpenSSL checks a bulk-signed and an OcspSigner-signed answer against the chain.
      const chainFile = path.join(ctx.tmp, "chain.pem");
      writeFileSync(chainFile, issuer.chain.map((d) => toPem(d)).join(""));
      writeFileSync(path.join(ctx.tmp, "issuer.pem"), toPem(issuer.chain[0]!));
      for (const serial of [rest[0]!, (await sampleSerials(ca.dbUrl, 1, "serial LIKE '6a%' AND status = 'valid'"))[0]!]) {
        const res = await fetch(`${url}ocsp`, { method: "POST", body: new Uint8Array(ocspRequest(certIdFor("sha1", issuer.facts, serial))), headers });
        writeFileSync(path.join(ctx.tmp, "check.der"), Buffer.from(await res.arrayBuffer()));
        const check = run("openssl", ["ocsp", "-respin", path.join(ctx.tmp, "check.der"), "-CAfile", chainFile, "-issuer", path.join(ctx.tmp, "issuer.pem"), "-serial", `0x${serial}`, "-no_nonce"], {
          allowFail: true,
        });
        const text = check.stdout + check.stderr;
        if (!/Response verify OK/.test(text) || !/: good/.test(text)) throw new Error(`openssl does not accept the responder's answer for ${serial}: ${text.slice(0, 400)}`);
      }

      // The ceiling is measured here too, in turns with ours: a bare node:http server
      // answering every request with this responder's own response bytes. Two separate
      // groups minutes apart read 47% and 71% for the same responder code; turns measured
      // back to back see the same machine.
      const bareFile = path.join(ctx.tmp, "bare-response.der");
      writeFileSync(bareFile, probeBody);
      const bare = await startBareHttp(bareFile);
      try {
        const targets = { ours: url, bare: bare.url } as const;
        // every server and method warmed up before any is measured, so none gains from going later
        for (const target of Object.values(targets)) for (const reqs of [post, get]) await wrk({ url: target, requests: reqs, headers, seconds: ctx.warmupSeconds });
        const turnSeconds = Math.max(2, Math.round(ctx.seconds / OCSP_TURNS));
        const runs: Record<string, WrkResult[]> = {};
        // CPU each server spends per request, in user space and in the kernel (sockets)
        const cpu: Record<string, { userMs: number; systemMs: number; requests: number }> = {};
        const pids = { ours: responder.child.pid!, bare: bare.pid };
        for (let turn = 0; turn < OCSP_TURNS; turn++) {
          for (const [method, reqs] of [
            ["POST", post],
            ["GET", get],
          ] as const) {
            for (const [server, target] of Object.entries(targets)) {
              const before = cpuTimes(pids[server as keyof typeof pids]);
              const r = await wrk({ url: target, requests: reqs, headers, seconds: turnSeconds, maxPerThread: 2_000_000 });
              const after = cpuTimes(pids[server as keyof typeof pids]);
              (runs[`${server} ${method}`] ??= []).push(r);
              const total = (cpu[`${server} ${method}`] ??= { userMs: 0, systemMs: 0, requests: 0 });
              total.userMs += after.userMs - before.userMs;
              total.systemMs += after.systemMs - before.systemMs;
              total.requests += r.requests;
            }
          }
        }
        for (const method of ["POST", "GET"] as const) {
          const ours = medianRun(runs[`ours ${method}`]!);
          const ceiling = medianRun(runs[`bare ${method}`]!);
          const id = `ours.ocsp.${method.toLowerCase()}`;
          results.push({
            id,
            label: `OCSP ${method}, pre-signed, ${n.toLocaleString("en-US")} certificates (apps/ocsp-responder)`,
            value: ours.rps,
            unit: "req/s",
            details: {
              ...ours.latency,
              errors: runs[`ours ${method}`]!.reduce((total, r) => total + failures(r), 0),
              requests: ours.requests,
              seconds: ours.seconds,
              responseBytes: probeBody.length,
              turns: runs[`ours ${method}`]!.map((r) => Math.round(r.rps)),
              ...cpuPerRequest(cpu[`ours ${method}`]!),
              note: `${probeBody.length}-byte answers; median of ${OCSP_TURNS} turns of ${turnSeconds} s taken in turns with the bare node:http server; CPU per request ${describeCpu(cpu[`ours ${method}`]!)} (bare node:http ${describeCpu(cpu[`bare ${method}`]!)})`,
            },
          });
          results.push({
            id: `ceiling.http.ocsp.${method.toLowerCase()}`,
            label: `bare node:http, ${method}, the responder's own ${probeBody.length}-byte response, in turns with it`,
            value: ceiling.rps,
            unit: "req/s",
            details: {
              ...ceiling.latency,
              errors: runs[`bare ${method}`]!.reduce((total, r) => total + failures(r), 0),
              turns: runs[`bare ${method}`]!.map((r) => Math.round(r.rps)),
              ...cpuPerRequest(cpu[`bare ${method}`]!),
            },
          });
        }
      } finally {
        await bare.stop();
      }

      results.push(
        await attempt("ours.ocsp.underload", "OCSP p99 while issuance runs flat out", ctx.log, async () => {
          const csrs = makeCsrs(ctx.tmp, 100);
          const api = await startApiProcess(ca, [], { app: "api", workers: "auto" });
          let issuance: Promise<{ rate: number; how: string }>;
          // Two OCSP loads in turn while issuance runs: a paced one, as relying parties ask
          // (16 connections, each waiting 10 ms between requests: about 1,500 req/s), which
          // is the row; and a saturating one, whose p99 is mostly its own queue (32
          // connections kept full: Little's law), reported in the note.
          const ocspSeconds = 2 * ctx.seconds;
          if (typeof api !== "string") {
            const reqs: WrkRequest[] = csrs.map((csr) => ({ method: "POST", path: "/v1/certificates", body: Buffer.from(JSON.stringify({ csr, profile: "mtls" })) }));
            issuance = wrk({
              url: `${api.url}/`,
              requests: reqs,
              headers: { "Content-Type": "application/json", Authorization: `Bearer ${ca.adminToken}` },
              seconds: ocspSeconds + 2 * ctx.warmupSeconds,
              connections: 32,
            }).then((r) => ({ rate: r.rps, how: "HTTPS API under wrk, 32 connections" }));
          } else {
            let i = 0;
            issuance = timedLoop(() => ca.runtime.authority.issue({ csr: parseCsr(csrs[i++ % csrs.length]!), profile: "mtls", requester: { kind: "operator", actor: "bench" } }), {
              seconds: ocspSeconds + ctx.warmupSeconds,
              warmupSeconds: ctx.warmupSeconds,
              concurrency: 32,
            }).then((r) => ({ rate: r.rate, how: `authority.issue in process, 32 in flight (${api})` }));
          }
          try {
            await new Promise((r) => setTimeout(r, ctx.warmupSeconds * 1000));
            const r = await wrk({ url, requests: post, headers, seconds: ctx.seconds, connections: 16, delayMs: 10, maxPerThread: 2_000_000 });
            const saturating = await wrk({ url, requests: post, headers, seconds: ctx.seconds, maxPerThread: 2_000_000 });
            const iss = await issuance;
            return {
              id: "ours.ocsp.underload",
              label: "OCSP POST p99 while issuance runs flat out (paced relying-party load)",
              value: r.latency.p99,
              unit: "ms",
              details: {
                p50: r.latency.p50,
                p99: r.latency.p99,
                max: r.latency.max,
                ocspRps: Math.round(r.rps),
                issuanceRate: Math.round(iss.rate),
                errors: failures(r) + failures(saturating),
                saturatingP99: saturating.latency.p99,
                saturatingRps: Math.round(saturating.rps),
                note: `${Math.round(r.rps)} OCSP req/s (16 connections, 10 ms apart) alongside ${Math.round(iss.rate)} certs/s (${iss.how}); saturating OCSP load instead (32 connections, no pause): p99 ${saturating.latency.p99.toFixed(1)} ms at ${Math.round(saturating.rps)} req/s`,
              },
            };
          } finally {
            await issuance.catch(() => undefined);
            if (typeof api !== "string") await api.stop();
          }
        }),
      );

      // Revocation visibility. Revocations one at a time, 400 ms apart.
      const revocations = await attempt("ours.revoke.ocsp", "revocation visible", ctx.log, async () => {
        const k = ctx.quick ? 8 : 20;
        const victims = (await sampleSerials(ca.dbUrl, 200)).filter((s) => !serials.slice(0, 50).includes(s)).slice(0, k);
        const ocspLatency: number[] = [];
        const deltaLatency: number[] = [];
        const pendingDelta = new Map<string, number>();
        const deadline = performance.now() + 120_000;
        let deltaDone: () => void = () => {};
        const deltaFinished = new Promise<void>((r) => (deltaDone = r));
        let expected = victims.length;
        const deltaPoll = setInterval(async () => {
          if (pendingDelta.size === 0) return;
          const crl = await ca.runtime.inventory.crls.read(ca.issuerId, "delta").catch(() => undefined);
          if (!crl) return;
          for (const [serial, t0] of pendingDelta) {
            const needle = Buffer.concat([Buffer.from([0x02, serial.length / 2]), Buffer.from(serial, "hex")]);
            if (crl.der.includes(needle)) {
              deltaLatency.push(performance.now() - t0);
              pendingDelta.delete(serial);
              if (--expected === 0) deltaDone();
            }
          }
          if (performance.now() > deadline) deltaDone();
        }, 50);
        try {
          const watchers: Promise<void>[] = [];
          for (const serial of victims) {
            const certId = certIdFor("sha1", issuer.facts, serial);
            const body = ocspRequest(certId);
            const t0 = performance.now();
            await revokeCertificate({ inventory: ca.runtime.inventory, events: ca.runtime.events, clock: systemClock }, { serial, reason: "keyCompromise", actor: "bench" });
            pendingDelta.set(serial, t0);
            watchers.push(
              (async () => {
                while (performance.now() < deadline) {
                  const res = await fetch(`${url}ocsp`, { method: "POST", body: new Uint8Array(body), headers });
                  const status = certStatusIn(Buffer.from(await res.arrayBuffer()), certId);
                  if (status === "revoked") return void ocspLatency.push(performance.now() - t0);
                  await new Promise((r) => setTimeout(r, 10));
                }
              })(),
            );
            await new Promise((r) => setTimeout(r, 400));
          }
          await Promise.all(watchers);
          await deltaFinished;
        } finally {
          clearInterval(deltaPoll);
        }
        return { ocspLatency: ocspLatency.sort((a, b) => a - b), deltaLatency: deltaLatency.sort((a, b) => a - b), k: victims.length };
      });
      if ("unavailable" in revocations) {
        results.push(revocations, { ...revocations, id: "ours.revoke.delta" });
      } else {
        const { ocspLatency, deltaLatency, k } = revocations;
        const row = (id: string, label: string, l: number[]) =>
          l.length < k
            ? { id, label, unavailable: `only ${l.length} of ${k} revocations became visible within 120 s` }
            : {
                id,
                label,
                value: percentile(l, 99),
                unit: "ms",
                details: { p50: percentile(l, 50), p99: percentile(l, 99), max: l[l.length - 1], revocations: k, note: `${k} revocations, 400 ms apart` },
              };
        results.push(row("ours.revoke.ocsp", "revocation visible in OCSP (apps/ocsp-responder over HTTP), p99", ocspLatency));
        results.push(row("ours.revoke.delta", "revocation visible in the published delta CRL, p99", deltaLatency));
      }
    } finally {
      await responder.stop();
    }
  } finally {
    await role?.stop().catch(() => {});
    await ca.cleanup();
  }
  return results;
};
export default group;
