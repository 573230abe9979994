// Realistic certificate rows written by the database itself (INSERT ... SELECT
// generate_series): a million in tens of seconds. Rows are not valid DER (tbs_der/der are
// placeholders); serials, names, dates, status, revocation dates and reasons are real.
import pg from "pg";

export interface SeedOptions {
  issuerId: string;
  count: number;
  /** fraction revoked (spread over the past 30 days, reasons 0-5); the rest valid or expired */
  revokedFraction: number;
  /** fraction of the non-revoked that expired already */
  expiredFraction?: number;
  /** serial prefix (two hex digits; serials are 17 bytes, like ours) so several seeds in one database do not collide */
  prefix?: string;
  /** tbs_der placeholder size (a real leaf's is ~400) */
  tbsBytes?: number;
  /** fill der with this many bytes (a real P-256 leaf is ~700) */
  derBytes?: number;
  /**
   * drop the table's secondary indexes, insert, and create them again (as a bulk load
   * does): far faster than maintaining a trigram GIN index row by row
   */
  rebuildIndexes?: boolean;
  /** every row's public key (default: a placeholder that is not a valid point; a re-issue needs a real key) */
  publicKeySpki?: Buffer;
}

export async function seedCertificates(dbUrl: string, options: SeedOptions): Promise<{ seconds: number; rows: number }> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const t0 = performance.now();
  const prefix = options.prefix ?? "5a";
  if (!/^[0-9a-f]{2}$/.test(prefix)) throw new Error("seed prefix must be two hex digits");
  try {
    await client.query("SET synchronous_commit = off");
    await client.query("SET maintenance_work_mem = '256MB'");
    const indexes: Array<{ name: string; def: string }> = options.rebuildIndexes
      ? (await client.query("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'certificates' AND indexname <> 'certificates_pkey'")).rows
      : [];
    for (const index of indexes) await client.query(`DROP INDEX "${index.name}"`);
    // two connections, one per core, each inserting its half in batches
    const spki = options.publicKeySpki ?? Buffer.concat([Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex"), Buffer.alloc(64, 0xab)]);
    const tbs = Buffer.alloc(options.tbsBytes ?? 400, 0x30);
    const der = Buffer.alloc(options.derBytes ?? 700, 0x30);
    const insertRange = async (lo: number, hi: number) => {
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      try {
        await c.query("SET synchronous_commit = off");
        const batch = 100_000;
        for (let from = lo; from <= hi; from += batch) {
          const to = Math.min(hi, from + batch - 1);
          await c.query(
            `INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki,
                                       not_before, not_after, tbs_der, der, requester, revoked_at, revocation_reason, created_at, issued_at)
             SELECT s.serial, $1, CASE WHEN s.revoked THEN 'revoked' ELSE 'valid' END::"CertificateStatus", 'mtls',
                    'CN=' || s.host, ARRAY['DNS:' || s.host, 'DNS:' || s.host || '.svc.cluster.local'],
                    'cn=' || s.host || ' dns:' || s.host || ' dns:' || s.host || '.svc.cluster.local',
                    'ECDSA-P256', $8::bytea,
                    s.not_after - interval '90 days', s.not_after, $9::bytea, $4::bytea,
                    'bench:seed',
                    CASE WHEN s.revoked THEN now() - (s.i % 2592000) * interval '1 second' END,
                    CASE WHEN s.revoked THEN (ARRAY[0,1,3,4,5,0])[1 + s.i % 6] END,
                    s.not_after - interval '90 days', s.not_after - interval '90 days'
             FROM (
               SELECT i,
                      $5 || substr(md5(i::text || $5), 1, 24) || lpad(to_hex(i), 8, '0') AS serial,
                      'svc-' || i || '.team-' || (i % 997) || '.example.com' AS host,
                      (i % 1000) < ($3::float8 * 1000) AS revoked,
                      CASE WHEN ((i * 7) % 1000) < ($6::float8 * 1000) THEN now() - (i % 864000) * interval '1 second'
                           ELSE now() + interval '1 hour' + (i % (90 * 86400)) * interval '1 second' END AS not_after
               FROM generate_series($2::int, $7::int) AS i
             ) s`,
            [options.issuerId, from, options.revokedFraction, der, prefix, options.expiredFraction ?? 0, to, spki, tbs],
          );
        }
      } finally {
        await c.end();
      }
    };
    const half = Math.ceil(options.count / 2);
    await Promise.all([insertRange(1, half), insertRange(half + 1, options.count)]);
    // the trigram GIN index on one connection, the B-trees on another, at once
    const build = async (defs: string[]) => {
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      try {
        await c.query("SET maintenance_work_mem = '256MB'");
        for (const def of defs) await c.query(def);
      } finally {
        await c.end();
      }
    };
    const gin = indexes.filter((i) => /USING gin/i.test(i.def)).map((i) => i.def);
    const btree = indexes.filter((i) => !/USING gin/i.test(i.def)).map((i) => i.def);
    await Promise.all([build(gin), build(btree)]);
    await client.query("ANALYZE certificates");
  } finally {
    await client.end();
  }
  return { seconds: (performance.now() - t0) / 1000, rows: options.count };
}
