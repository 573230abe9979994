// Ours: the full CRL of an issuer with 1,000,000 revoked certificates (200,000 in --quick,
// as for the openssl peer) (seeded with
// INSERT ... SELECT generate_series; revocation dates over 30 days, reasons as the
// openssl peer's), from PostgreSQL to signed DER stored in crl_state, by CrlPublisher
// in a process of its own (bench/servers/crl-build.ts) under /usr/bin/time -v. The time is
// publishFull's own (runtime start-up excluded, reported apart); the peak RSS is the whole
// process's, as for openssl, with the crl-publisher role's NODE_OPTIONS from
// docker-compose.yml (a first build with Node's defaults is reported in the note). The CRL
// is then read from the database by this process and checked with `openssl crl -CAfile`.
import { writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { toPem } from "@pki/x509";
import type { Group } from "../lib/types.ts";
import { createCa, childEnv } from "../lib/ca.ts";
import { seedCertificates } from "../lib/seed.ts";
import { run } from "../lib/proc.ts";
import { timeV } from "../lib/time.ts";
import { REPO_ROOT } from "../lib/repo.ts";
import { crlEntries } from "./peer-openssl-crl.ts";

const group: Group = async (ctx) => {
  const n = crlEntries(ctx.quick);
  const ca = await createCa(ctx.pgUrl, ctx.tmp);
  try {
    const seeded = await seedCertificates(ca.dbUrl, { issuerId: ca.issuerId, count: n, revokedFraction: 1, prefix: "7c", derBytes: 16, rebuildIndexes: true });
    ctx.log(`${n} revoked certificates seeded in ${seeded.seconds.toFixed(1)} s`);
    const chain = ca.runtime.keyring.active().chain;
    await ca.runtime.close();
    const out = path.join(ctx.tmp, "full.crl");
    const buildOnce = (nodeOptions: string) => {
      const r = timeV(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "bench/servers/crl-build.ts")], {
        env: childEnv(ca, { NODE_OPTIONS: nodeOptions }),
        cwd: REPO_ROOT,
        timeoutMs: 240_000,
      });
      const line = r.stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
      if (r.exit !== 0 || !line) throw new Error(`CRL build exited ${r.exit}: ${r.stderr.slice(-600)}`);
      return { r, built: JSON.parse(line.slice(11)) as { seconds: number; issuerId: string; entries: number; baselineRssMB: number; maxRssMB: number } };
    };
    // Node's default flags first, for the record; then as the crl-publisher role is deployed
    // (docker-compose), with a small young generation: see CRL_PUBLISHER_NODE_OPTIONS.
    const defaults = buildOnce("");
    const { r, built } = buildOnce(CRL_PUBLISHER_NODE_OPTIONS);
    const der = await readPublishedCrl(ca.dbUrl, built.issuerId);
    writeFileSync(out, der);
    const chainFile = path.join(ctx.tmp, "chain.pem");
    writeFileSync(chainFile, chain.map((d) => toPem(d)).join(""));
    const check = run("openssl", ["crl", "-inform", "DER", "-in", out, "-CAfile", chainFile, "-noout"], { allowFail: true, timeoutMs: 120_000 });
    const verified = /verify OK/.test(check.stdout + check.stderr);
    return [
      {
        id: "ours.crl.full",
        label: `full CRL, ${built.entries.toLocaleString("en-US")} revoked, PostgreSQL → signed DER (CrlPublisher.publishFull)`,
        value: built.seconds,
        unit: "s",
        details: {
          rssMB: r.rssMB,
          baselineRssMB: built.baselineRssMB,
          derMB: der.length / 1e6,
          processWallSeconds: r.seconds,
          entries: built.entries,
          opensslVerify: verified ? "verify OK" : (check.stdout + check.stderr).slice(0, 200),
          defaultFlagsRssMB: defaults.r.rssMB,
          defaultFlagsSeconds: defaults.built.seconds,
          note: `NODE_OPTIONS=${CRL_PUBLISHER_NODE_OPTIONS} as deployed (Node's defaults: ${Math.round(defaults.r.rssMB)} MB, ${defaults.built.seconds.toFixed(2)} s); ${(der.length / 1e6).toFixed(1)} MB DER; runtime baseline ${Math.round(built.baselineRssMB)} MB RSS before the build; whole process ${r.seconds.toFixed(1)} s; openssl crl: ${verified ? "verify OK" : "NOT verified"}`,
        },
      },
    ];
  } finally {
    await ca.cleanup();
  }
};
export default group;

/**
 * The crl-publisher role's Node options in docker-compose.yml. While a million rows stream
 * through, V8 grows its young generation to 16 MB semi-spaces (about 50 MB of RSS) for
 * throughput the publisher does not need; 2 MB keeps the process near its baseline.
 */
const CRL_PUBLISHER_NODE_OPTIONS = "--max-semi-space-size=2";

async function readPublishedCrl(dbUrl: string, issuerId: string): Promise<Buffer> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const rows = await client.query<{ der: Buffer }>("SELECT full_der AS der FROM crl_state WHERE issuer_id = $1", [issuerId]);
    if (!rows.rows[0]?.der) throw new Error(`no full CRL published for ${issuerId}`);
    return rows.rows[0].der;
  } finally {
    await client.end();
  }
}
