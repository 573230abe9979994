// Ours: a certificate fleet at scale, each figure against a ceiling measured in this run.
//  0. The token's raw sign rate: the ceiling-sign group run as a child process (its own
//     PKCS#11 module and token), the better of raw C_Sign on 1 session and on 4.
//  1. Pre-signing OCSP for a whole inventory: 1,000,000 seeded certificates (20,000 in
//     --quick; 1% revoked, 5% already expired), then OcspSigner (packages/revocation, as
//     the revocation role runs it) sweeps until every unexpired certificate has its SHA-1
//     and SHA-256 CertID responses. Timed from a fresh signer (responder certificate
//     issued on the token) to the last response stored. Bound: responses per second at
//     least half the raw sign rate (each response is one signature).
//  2. Re-issue after an intermediate revocation, on the same CA: the in-process issuance
//     rate is measured first (authority.issue, 32 in flight); then revokeIntermediate (a
//     replacement takes over) and reissueCertificates, which the CLI and the API run,
//     re-issue 100,000 of the affected certificates (3,000 in --quick; the seeded ones
//     carry a real P-256 key) through the issuance pipeline. Timed from the end of the
//     revocation (its own time is in the note).
//     Bound: re-issues per second at least half that issuance rate.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { parseCsr } from "@pki/x509";
import { reissueCertificates, revokeIntermediate, systemClock } from "@pki/authority";
import { OcspSigner } from "@pki/revocation";
import { isUnavailable, type Group, type Measurement, type Result } from "../lib/types.ts";
import { createCa } from "../lib/ca.ts";
import { seedCertificates } from "../lib/seed.ts";
import { timedLoop } from "../lib/measure.ts";
import { makeCsrs } from "../lib/csrs.ts";
import { REPO_ROOT } from "../lib/repo.ts";

/** The ceiling-sign group in a child process: a token of its own, so this process's PKCS#11 module stays the CA's. */
function rawSignRate(ctx: Parameters<Group>[0]): Measurement | { unavailable: string } {
  const out = path.join(ctx.tmp, "ceiling-sign.json");
  const child = spawnSync(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "bench/child.ts"), "ceiling-sign", out], {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_TMP: ctx.tmp },
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 120_000,
  });
  if (child.status !== 0) return { unavailable: `the ceiling-sign child exited ${child.status ?? child.signal}` };
  const results = JSON.parse(readFileSync(out, "utf8")) as Result[];
  const measured = results.filter((r): r is Measurement => !isUnavailable(r));
  const raws = measured.filter((r) => r.id === "ceiling.sign.raw1" || r.id === "ceiling.sign.rawN");
  if (raws.length === 0) return { unavailable: "the ceiling-sign child measured no raw sign rate" };
  const best = raws.reduce((a, b) => (a.value >= b.value ? a : b));
  const all = Object.fromEntries(measured.map((r) => [r.id, Math.round(r.value)]));
  return { ...best, details: { ...best.details, ...all, note: measured.map((r) => `${r.label}: ${Math.round(r.value)}/s`).join("; ") } };
}

const group: Group = async (ctx) => {
  const results: Result[] = [];
  const raw = rawSignRate(ctx);
  if ("unavailable" in raw) results.push({ id: "ours.fleet.sign.raw", label: "raw token sign rate", unavailable: raw.unavailable });
  else {
    results.push({ ...raw, id: "ours.fleet.sign.raw", label: `raw token sign rate (${raw.label}, measured by this group)` });
    ctx.log(`raw sign rate ${Math.round(raw.value)}/s (${raw.label})`);
  }
  const fleet = ctx.quick ? 20_000 : 1_000_000;
  const reissueCount = ctx.quick ? 3_000 : 100_000;
  // One CA for both (a process opens one token directory): the fleet is seeded under its
  // intermediate, pre-signed, then the intermediate is revoked and its certificates re-issued.
  const ca = await createCa(ctx.pgUrl, ctx.tmp, { PKI_LOG_LEVEL: "error" });
  try {
    const csrs = makeCsrs(ctx.tmp, 100).map((pem) => parseCsr(pem));
    // one real key for every seeded certificate, so each can be re-issued (policy allows a shared key)
    const seeded = await seedCertificates(ca.dbUrl, {
      issuerId: ca.issuerId,
      count: fleet,
      revokedFraction: 0.01,
      expiredFraction: 0.05,
      prefix: "7b",
      rebuildIndexes: true,
      publicKeySpki: csrs[0]!.publicKeySpki,
    });
    ctx.log(`${fleet} certificates seeded in ${seeded.seconds.toFixed(1)} s`);
    const c = new pg.Client({ connectionString: ca.dbUrl });
    await c.connect();
    try {
      // 1. OCSP pre-signing of the whole inventory.
      const unexpired = Number((await c.query("SELECT count(*) AS n FROM certificates WHERE status IN ('valid', 'revoked') AND not_after > now()")).rows[0].n);
      const signer = new OcspSigner({ inventory: ca.runtime.inventory, keyring: ca.runtime.keyring, authority: ca.runtime.authority, config: ca.config, clock: systemClock });
      const t0 = performance.now();
      while ((await signer.sweep(true)) > 0) {}
      const seconds = (performance.now() - t0) / 1000;
      await signer.stop();
      const stored = Number((await c.query("SELECT count(*) AS n FROM ocsp_responses r JOIN certificates c ON c.serial = r.serial AND c.not_after > now()")).rows[0].n);
      if (stored < unexpired) throw new Error(`only ${stored} of ${unexpired} unexpired certificates have responses after the sweep`);
      results.push({
        id: "ours.fleet.ocsp",
        label: `OCSP pre-signing of a ${fleet.toLocaleString("en-US")}-certificate inventory (${unexpired.toLocaleString("en-US")} unexpired × 2 CertID hashes, OcspSigner sweep)`,
        value: seconds,
        unit: "s",
        details: { certificates: fleet, unexpired, responses: signer.signedCount, rate: signer.signedCount / seconds, note: `${Math.round(signer.signedCount / seconds)} responses/s` },
      });
      ctx.log(`${signer.signedCount} responses in ${seconds.toFixed(1)} s`);
    } finally {
      await c.end();
    }

    // 2. The re-issue's reference: issuance in this process.
    let i = 0;
    const issue = await timedLoop(() => ca.runtime.authority.issue({ csr: csrs[i++ % csrs.length]!, profile: "mtls", requester: { kind: "operator", actor: "bench" } }), {
      seconds: ctx.seconds,
      warmupSeconds: ctx.warmupSeconds,
      concurrency: 32,
    });
    results.push({
      id: "ours.fleet.issue",
      label: "issuance in process (authority.issue, 32 in flight), the re-issue's reference",
      value: issue.rate,
      unit: "certs/s",
      details: { ops: issue.ops, seconds: issue.seconds, errors: issue.errors, p99: issue.p99 },
    });
    ctx.log(`issuance ${Math.round(issue.rate)} certs/s (${issue.errors} errors)`);

    // 3. Revocation of the intermediate, then the re-issue of (the first) reissueCount affected.
    const t0 = performance.now();
    const report = await revokeIntermediate(ca.config, ca.runtime.inventory, systemClock, { issuerId: ca.issuerId, actor: "bench" });
    await ca.runtime.keyring.reload();
    const revokedSeconds = (performance.now() - t0) / 1000;
    const records = report.affected.slice(0, reissueCount);
    let reported = 0;
    const t1 = performance.now();
    const result = await reissueCertificates(ca.runtime, records, "bench", { onProgress: (p) => (reported = p.reissued.length + p.failedCount) });
    const seconds = (performance.now() - t1) / 1000;
    if (result.failedCount > 0) ctx.log(`${result.failedCount} re-issues failed, first: ${result.failed[0]?.error}`);
    const rate = result.reissued.length / seconds;
    results.push({
      id: "ours.fleet.reissue",
      label: `re-issue of ${records.length.toLocaleString("en-US")} certificates after an intermediate revocation (revokeIntermediate + reissueCertificates)`,
      value: seconds,
      unit: "s",
      details: {
        affected: report.affected.length,
        certificates: records.length,
        reissued: result.reissued.length,
        failed: result.failedCount,
        progressReported: reported,
        revocationSeconds: revokedSeconds,
        rate,
        note: `${Math.round(rate)} re-issues/s, after the revocation itself (${revokedSeconds.toFixed(1)} s: replacement intermediate, root CRL, listing the ${report.affected.length.toLocaleString("en-US")} affected)${result.failedCount ? `; ${result.failedCount} failed` : ""}`,
      },
    });
    ctx.log(`${result.reissued.length} of ${report.affected.length} affected re-issued in ${seconds.toFixed(1)} s after a ${revokedSeconds.toFixed(1)} s revocation`);
  } finally {
    await ca.cleanup();
  }
  return results;
};
export default group;
