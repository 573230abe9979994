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
  /** fill der with this many bytes (a real P-256 leaf is ~700) */
  derBytes?: number;
  /**
   * drop the table's secondary indexes, insert, and create them again (as a bulk load
   * does): far faster than maintaining a trigram GIN index row by row
   */
  rebuildIndexes?: boolean;
}

export async function seedCertificates(dbUrl: string, options: SeedOptions): Promise<{ seconds: number; rows: number }> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const t0 = performance.now();
  try {
    await client.query("SET synchronous_commit = off");
    await client.query("SET maintenance_work_mem = '256MB'");
    const indexes: Array<{ name: string; def: string }> = options.rebuildIndexes
      ? (await client.query("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'certificates' AND indexname <> 'certificates_pkey'")).rows
      : [];
    for (const index of indexes) await client.query(`DROP INDEX "${index.name}"`);
    const batch = 250_000;
    for (let from = 1; from <= options.count; from += batch) {
      const to = Math.min(options.count, from + batch - 1);
      if (!/^[0-9a-f]{2}$/.test(options.prefix ?? "5a")) throw new Error("seed prefix must be two hex digits");
      await client.query(
        `INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki,
                                   not_before, not_after, tbs_der, der, requester, revoked_at, revocation_reason, created_at, issued_at)
         SELECT s.serial, $1, CASE WHEN s.revoked THEN 'revoked' ELSE 'valid' END::"CertificateStatus", 'mtls',
                'CN=' || s.host, ARRAY['DNS:' || s.host, 'DNS:' || s.host || '.svc.cluster.local'],
                lower('CN=' || s.host || ' DNS:' || s.host || ' DNS:' || s.host || '.svc.cluster.local'),
                'ECDSA-P256', decode('3059301306072a8648ce3d020106082a8648ce3d03010703420004' || repeat('ab', 64), 'hex'),
                s.not_after - interval '90 days', s.not_after, decode(repeat('00', 300), 'hex'), decode(repeat('30', $4::int), 'hex'),
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
        [options.issuerId, from, options.revokedFraction, options.derBytes ?? 700, options.prefix ?? "5a", options.expiredFraction ?? 0, to],
      );
    }
    await client.query("SET max_parallel_maintenance_workers = 2");
    for (const index of indexes) await client.query(index.def);
    await client.query("ANALYZE certificates");
  } finally {
    await client.end();
  }
  return { seconds: (performance.now() - t0) / 1000, rows: options.count };
}
