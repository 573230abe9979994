// How GET /v1/certificates behaves at a million rows: fills a fresh database on the
// PostgreSQL server in PKI_TEST_DATABASE_URL with N synthetic certificates, then times the
// inventory's own list() (the code path the API and CLI use) for each kind of filter, with
// and without the trigram index. Run:
//   bash scripts/with-postgres.sh npx tsx apps/api/bench/inventory-search.ts [rows]
import pg from "pg";
import { randomBytes } from "node:crypto";
import { Inventory, type CertificateQuery } from "@pki/db";

const ROWS = Number(process.argv[2] ?? 1_000_000);
const REPEAT = 7;

async function freshDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `pki_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

async function fill(inventory: Inventory): Promise<void> {
  await inventory.sql.exec(`
    INSERT INTO issuers (id, role, status, subject, serial, key_uri, key_algorithm, not_before, not_after, certificate_der)
    VALUES ('bench-int-a', 'intermediate', 'active', 'CN=Bench A', '01', 'pkcs11:object=a', 'ECDSA-P256', now() - interval '1 day', now() + interval '1 year', '\\x00'),
           ('bench-int-b', 'intermediate', 'retired', 'CN=Bench B', '02', 'pkcs11:object=b', 'ECDSA-P256', now() - interval '1 year', now() + interval '30 days', '\\x00');`);
  // 1 in 50 revoked, 1 in 4 client, 1 in 10 from the retired issuer, 20 teams, lifetimes spread over 90 days
  await inventory.sql.exec(`
    INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki, not_before, not_after, tbs_der, requester, revoked_at, revocation_reason)
    SELECT '01' || md5(i::text) || 'ab',
           CASE WHEN i % 10 = 0 THEN 'bench-int-b' ELSE 'bench-int-a' END,
           (CASE WHEN i % 50 = 0 THEN 'revoked' ELSE 'valid' END)::"CertificateStatus",
           CASE WHEN i % 4 = 0 THEN 'client' ELSE 'mtls' END,
           'CN=svc-' || i || '.team' || (i % 20) || '.svc.example',
           ARRAY['DNS:svc-' || i || '.team' || (i % 20) || '.svc.example', 'URI:spiffe://prod.example/ns/team' || (i % 20) || '/sa/svc-' || i],
           lower('CN=svc-' || i || '.team' || (i % 20) || '.svc.example DNS:svc-' || i || '.team' || (i % 20) || '.svc.example URI:spiffe://prod.example/ns/team' || (i % 20) || '/sa/svc-' || i),
           'ECDSA-P256', '\\x00', now() - interval '1 day', now() + ((i::bigint * 7919) % (90 * 86400)) * interval '1 second', '\\x00', 'provisioner:team' || (i % 20),
           CASE WHEN i % 50 = 0 THEN now() END, CASE WHEN i % 50 = 0 THEN 1 END
    FROM generate_series(1, ${ROWS}) AS i;`);
  await inventory.sql.exec("ANALYZE certificates");
}

async function time(inventory: Inventory, query: CertificateQuery): Promise<{ medianMs: number; items: number }> {
  const samples: number[] = [];
  let items = 0;
  for (let i = 0; i < REPEAT; i++) {
    const start = process.hrtime.bigint();
    const page = await inventory.certificates.list(query);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    items = page.items.length;
  }
  samples.sort((a, b) => a - b);
  return { medianMs: samples[Math.floor(samples.length / 2)]!, items };
}

async function main(): Promise<void> {
  const serverUrl = process.env.PKI_TEST_DATABASE_URL;
  if (!serverUrl) throw new Error("run through scripts/with-postgres.sh (PKI_TEST_DATABASE_URL)");
  const db = await freshDatabase(serverUrl);
  const inventory = await Inventory.open({ url: db.url, embeddedDir: "" });
  try {
    const t0 = Date.now();
    await fill(inventory);
    console.log(`filled ${ROWS} certificates in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const now = new Date();
    const deep = await inventory.certificates.list({ limit: 1000 });
    let cursor = deep.nextCursor!;
    for (let i = 0; i < 49; i++) cursor = (await inventory.certificates.list({ limit: 1000, cursor })).nextCursor!;
    const queries: Array<[string, CertificateQuery]> = [
      ["first page, no filter (limit 100)", {}],
      ["page 51 of 1000-row pages (cursor)", { limit: 100, cursor }],
      ["status=revoked", { status: "revoked" }],
      ["status=valid", { status: "valid" }],
      ["profile=client", { profile: "client" }],
      ["issuerId=retired issuer", { issuerId: "bench-int-b" }],
      ["expires in the next 7 days", { expiresAfter: now, expiresBefore: new Date(now.getTime() + 7 * 86400_000) }],
      ["q=one service (rare term)", { q: "svc-123457.team17" }],
      ["q=one team (5% of rows)", { q: "team7.svc" }],
      ["q=rare term + status=valid", { q: "svc-99999.", status: "valid" }],
      ["q=absent term", { q: "no-such-service" }],
    ];
    const results: Record<string, { medianMs: number; items: number }> = {};
    for (const [label, query] of queries) {
      results[label] = await time(inventory, query);
      console.log(`${label.padEnd(40)} ${results[label]!.medianMs.toFixed(1).padStart(8)} ms  (${results[label]!.items} items)`);
    }
    const plan = await inventory.sql.query<{ "QUERY PLAN": string }>(
      `EXPLAIN ANALYZE SELECT serial FROM certificates WHERE search_text LIKE '%svc-123457.team17%' ORDER BY not_after, serial LIMIT 101`,
    );
    console.log(plan.map((r) => `  ${r["QUERY PLAN"]}`).join("\n"));
    await inventory.sql.exec(`DROP INDEX "certificates_search_text_trgm_idx"`);
    for (const label of ["q=one service (rare term)", "q=absent term"]) {
      const r = await time(inventory, queries.find(([l]) => l === label)![1]);
      console.log(`without the trigram index: ${label.padEnd(30)} ${r.medianMs.toFixed(1).padStart(8)} ms`);
    }
  } finally {
    await inventory.close();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
