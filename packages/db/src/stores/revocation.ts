// Revocation status storage: published CRLs, delegated OCSP responders and pre-signed OCSP
// responses. Raw SQL through the pg pool rather than Prisma: CRL building streams up to
// millions of rows through a cursor inside a locked transaction, and large DER values go
// to and from PostgreSQL as binary parameters instead of hex text.
import type pg from "pg";
import { inTransaction } from "../transaction.ts";
import { CHANGE_CHANNELS } from "../notify.ts";

export type CrlKind = "full" | "delta";

/** What is known about a published CRL without its (possibly large) DER. */
export interface CrlMeta {
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  etag: string;
  /** delta CRLs only: the full CRL number they apply to */
  baseNumber?: bigint;
}

export interface CrlStateRecord {
  issuerId: string;
  lastNumber: bigint;
  full: CrlMeta | undefined;
  delta: CrlMeta | undefined;
  updatedAt: Date;
}

/** One revoked certificate as the CRL builder streams it. */
export interface RevokedEntry {
  serialHex: string;
  /** seconds since the epoch */
  revokedAt: number;
  reason: number;
}

/**
 * How many revoked entries share the properties that decide an entry's encoded size. With
 * these counts a CRL builder knows the DER length of its entry list before it streams them.
 */
export interface EntryShape {
  serialHexLength: number;
  /** the serial's first hex digit is 8 or more (DER then needs a leading zero octet) */
  signBit: boolean;
  /** a reason code other than 0 (unspecified), which the entry carries as an extension */
  hasReason: boolean;
  /** revoked, or `asOf` if earlier, in 2050 or later (RFC 5280 dates those as GeneralizedTime) */
  from2050: boolean;
  count: number;
}

/** Revoked entries in batches, and their shape counted beforehand. */
export interface RevokedSource extends AsyncIterable<RevokedEntry[]> {
  /**
   * Counts what the batches will hold. It is a statement of its own, so a revocation
   * committed between it and the cursor makes the two disagree: the builder then fails with
   * CrlSourceChangedError (nothing is published) and the publication is tried again.
   */
  shape(asOf: Date): Promise<EntryShape[]>;
}

/** The revoked entries changed between counting and streaming them; publishing again succeeds. */
export class CrlSourceChangedError extends Error {}

export interface CrlBuildContext {
  /** the number this CRL must carry: one more than any CRL number ever signed for the issuer */
  number: bigint;
  previous: CrlStateRecord;
  /**
   * Streams the issuer's revoked certificates still inside their validity at `notAfterFrom`,
   * optionally only those revoked at or after `revokedFrom`, in batches from a cursor.
   */
  revoked(filter: { notAfterFrom: Date; revokedFrom?: Date }): RevokedSource;
  /**
   * Stores part of the CRL's DER. The published CRL is its parts in `seq` order, so a builder
   * streams a large CRL out as it goes and writes the header, known last, as part 0.
   */
  writePart(seq: number, bytes: Buffer): Promise<void>;
}

export interface BuiltCrl {
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  etag: string;
  baseNumber?: bigint;
}

const CURSOR_BATCH = 2_000;
const READ_SLICE_BYTES = 4 * 1024 * 1024;

const toMeta = (row: Record<string, unknown>, prefix: "full" | "delta"): CrlMeta | undefined => {
  if (row[`${prefix}_number`] === null || row[`${prefix}_number`] === undefined) return undefined;
  return {
    number: BigInt(row[`${prefix}_number`] as string),
    thisUpdate: row[`${prefix}_this_update`] as Date,
    nextUpdate: row[`${prefix}_next_update`] as Date,
    entries: row[`${prefix}_entries`] as number,
    etag: row[`${prefix}_etag`] as string,
    ...(prefix === "delta" && row.delta_base_number !== null ? { baseNumber: BigInt(row.delta_base_number as string) } : {}),
  };
};

const META_COLUMNS = `issuer_id, last_number, full_number, full_this_update, full_next_update, full_entries, full_etag,
  delta_number, delta_base_number, delta_this_update, delta_next_update, delta_entries, delta_etag, updated_at`;

const toState = (row: Record<string, unknown>): CrlStateRecord => ({
  issuerId: row.issuer_id as string,
  lastNumber: BigInt(row.last_number as string),
  full: toMeta(row, "full"),
  delta: toMeta(row, "delta"),
  updatedAt: row.updated_at as Date,
});

export class CrlStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Builds and publishes one CRL while holding the issuer's crl_state row lock: a second
   * publisher waits here, then reads the number this one stored, so CRL numbers never
   * repeat or go backwards. The cursor is opened after the lock, so its snapshot holds
   * every revocation committed before this build began. The builder streams the DER into
   * a temporary table part by part (a million-entry CRL is never whole in this process, nor
   * copied into one 50 MB bind message); publication is one UPDATE that joins the parts:
   * readers see the old CRL or the new one.
   */
  async publish(issuerId: string, kind: CrlKind, build: (context: CrlBuildContext) => Promise<BuiltCrl>): Promise<CrlMeta> {
    return inTransaction(this.pool, async (client) => {
      await client.query(`INSERT INTO crl_state (issuer_id) VALUES ($1) ON CONFLICT (issuer_id) DO NOTHING`, [issuerId]);
      const locked = await client.query(`SELECT ${META_COLUMNS} FROM crl_state WHERE issuer_id = $1 FOR UPDATE`, [issuerId]);
      const previous = toState(locked.rows[0]!);
      const number = previous.lastNumber + 1n;
      // Storage EXTERNAL: the parts are joined once and stored again, so compressing each is wasted work.
      await client.query(`CREATE TEMP TABLE crl_parts (seq int4 PRIMARY KEY, part bytea NOT NULL) ON COMMIT DROP; ALTER TABLE crl_parts ALTER COLUMN part SET STORAGE EXTERNAL`);
      const writePart = async (seq: number, bytes: Buffer) => {
        await client.query(`INSERT INTO crl_parts (seq, part) VALUES ($1, $2)`, [seq, bytes]);
      };
      let cursors = 0;
      const revoked = (filter: { notAfterFrom: Date; revokedFrom?: Date }): RevokedSource => {
        const params: unknown[] = [issuerId, filter.notAfterFrom];
        if (filter.revokedFrom) params.push(filter.revokedFrom);
        const where = `issuer_id = $1 AND status = 'revoked' AND not_after >= $2${filter.revokedFrom ? " AND revoked_at >= $3" : ""}`;
        return {
          shape: async (asOf) => {
            const rows = await client.query(
              `SELECT length(serial) AS hex_length, left(serial, 1) IN ('8','9','a','b','c','d','e','f','A','B','C','D','E','F') AS sign_bit,
                      coalesce(revocation_reason, 0) <> 0 AS has_reason, least(revoked_at, $${params.length + 1}) >= '2050-01-01T00:00:00Z' AS from_2050, count(*)::int8 AS n
               FROM certificates WHERE ${where} GROUP BY 1, 2, 3, 4`,
              [...params, asOf],
            );
            return rows.rows.map((r) => ({ serialHexLength: r.hex_length, signBit: r.sign_bit, hasReason: r.has_reason, from2050: r.from_2050, count: Number(r.n) }));
          },
          [Symbol.asyncIterator]: async function* () {
            const name = `crl_entries_${cursors++}`;
            // No ORDER BY: RFC 5280 does not order CRL entries, and sorting a million rows
            // would cost the database memory and time for nothing.
            await client.query(
              `DECLARE ${name} NO SCROLL CURSOR FOR
                 SELECT serial, floor(extract(epoch FROM revoked_at))::int8 AS revoked_at, coalesce(revocation_reason, 0) AS reason
                 FROM certificates WHERE ${where}`,
              params,
            );
            try {
              for (;;) {
                const batch = await client.query<{ serial: string; revoked_at: string; reason: number }>(`FETCH ${CURSOR_BATCH} FROM ${name}`);
                if (batch.rows.length === 0) break;
                yield batch.rows.map((r) => ({ serialHex: r.serial, revokedAt: Number(r.revoked_at), reason: r.reason }));
              }
            } finally {
              await client.query(`CLOSE ${name}`);
            }
          },
        };
      };
      const built = await build({ number, previous, revoked, writePart });
      const der = `(SELECT string_agg(part, ''::bytea ORDER BY seq) FROM crl_parts)`;
      const meta: CrlMeta = {
        number,
        thisUpdate: built.thisUpdate,
        nextUpdate: built.nextUpdate,
        entries: built.entries,
        etag: built.etag,
        ...(built.baseNumber !== undefined ? { baseNumber: built.baseNumber } : {}),
      };
      if (kind === "full") {
        await client.query(
          `UPDATE crl_state SET last_number = $2, full_number = $2, full_der = ${der}, full_this_update = $3, full_next_update = $4, full_entries = $5, full_etag = $6, updated_at = clock_timestamp() WHERE issuer_id = $1`,
          [issuerId, number.toString(), built.thisUpdate, built.nextUpdate, built.entries, built.etag],
        );
      } else {
        await client.query(
          `UPDATE crl_state SET last_number = $2, delta_number = $2, delta_base_number = $7, delta_der = ${der}, delta_this_update = $3, delta_next_update = $4, delta_entries = $5, delta_etag = $6, updated_at = clock_timestamp() WHERE issuer_id = $1`,
          [issuerId, number.toString(), built.thisUpdate, built.nextUpdate, built.entries, built.etag, (built.baseNumber ?? 0n).toString()],
        );
      }
      // Publishers' CRL caches listening on the channel re-read at commit.
      await client.query(`SELECT pg_notify('${CHANGE_CHANNELS.crls}', '')`);
      return meta;
    });
  }

  async state(issuerId: string): Promise<CrlStateRecord | undefined> {
    const rows = await this.pool.query(`SELECT ${META_COLUMNS} FROM crl_state WHERE issuer_id = $1`, [issuerId]);
    return rows.rows[0] ? toState(rows.rows[0]) : undefined;
  }

  async states(): Promise<CrlStateRecord[]> {
    const rows = await this.pool.query(`SELECT ${META_COLUMNS} FROM crl_state ORDER BY issuer_id`);
    return rows.rows.map(toState);
  }

  /**
   * The published DER with its metadata, read from one snapshot (never a torn pair). A
   * large CRL is read in slices, so a 50 MB CRL never turns into one 100 MB hex string.
   */
  async read(issuerId: string, kind: CrlKind): Promise<{ der: Buffer; meta: CrlMeta } | undefined> {
    return inTransaction(
      this.pool,
      async (client) => {
        const head = await client.query(
          `SELECT ${kind}_number::text AS number, ${kind}_this_update AS this_update, ${kind}_next_update AS next_update, ${kind}_entries AS entries, ${kind}_etag AS etag,
                ${kind === "delta" ? "delta_base_number::text" : "NULL"} AS base, octet_length(${kind}_der) AS size
         FROM crl_state WHERE issuer_id = $1 AND ${kind}_der IS NOT NULL`,
          [issuerId],
        );
        const row = head.rows[0];
        if (!row) return undefined;
        const der = Buffer.allocUnsafe(row.size as number);
        for (let offset = 0; offset < der.length; offset += READ_SLICE_BYTES) {
          const slice = await client.query(`SELECT substring(${kind}_der FROM $2 FOR $3) AS part FROM crl_state WHERE issuer_id = $1`, [issuerId, offset + 1, READ_SLICE_BYTES]);
          (slice.rows[0].part as Buffer).copy(der, offset);
        }
        return {
          der,
          meta: {
            number: BigInt(row.number as string),
            thisUpdate: row.this_update as Date,
            nextUpdate: row.next_update as Date,
            entries: row.entries as number,
            etag: row.etag as string,
            ...(kind === "delta" ? { baseNumber: BigInt(row.base as string) } : {}),
          },
        };
      },
      { isolation: "repeatable read", readOnly: true },
    );
  }

  /** Certificates of an issuer revoked since `since`: what CRL publishers react to. */
  async revokedSince(since: Date): Promise<Array<{ issuerId: string; latest: Date }>> {
    const rows = await this.pool.query(`SELECT issuer_id, max(revoked_at) AS latest FROM certificates WHERE revoked_at >= $1 GROUP BY issuer_id`, [since]);
    return rows.rows.map((r) => ({ issuerId: r.issuer_id as string, latest: r.latest as Date }));
  }

  /** The latest notAfter of any certificate an issuer signed (responder certificates aside): retired issuers publish until then. */
  async lastExpiry(issuerId: string): Promise<Date | undefined> {
    // Delegated OCSP responder certificates do not count: they exist for the other certificates.
    const rows = await this.pool.query(`SELECT max(not_after) AS last FROM certificates WHERE issuer_id = $1 AND status IN ('valid', 'revoked') AND profile <> 'ocsp-responder'`, [issuerId]);
    return (rows.rows[0]?.last as Date | null) ?? undefined;
  }
}

export interface OcspResponderRecord {
  id: string;
  issuerId: string;
  keyUri: string;
  certificateDer: Buffer;
  notBefore: Date;
  notAfter: Date;
}

const toResponder = (r: Record<string, unknown>): OcspResponderRecord => ({
  id: r.id as string,
  issuerId: r.issuer_id as string,
  keyUri: r.key_uri as string,
  certificateDer: r.certificate_der as Buffer,
  notBefore: r.not_before as Date,
  notAfter: r.not_after as Date,
});

export class OcspResponderStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(record: OcspResponderRecord): Promise<void> {
    await this.pool.query(`INSERT INTO ocsp_responders (id, issuer_id, key_uri, certificate_der, not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6)`, [
      record.id,
      record.issuerId,
      record.keyUri,
      record.certificateDer,
      record.notBefore,
      record.notAfter,
    ]);
  }

  /** The issuer's newest responder certificate still valid at `at`. */
  async current(issuerId: string, at: Date): Promise<OcspResponderRecord | undefined> {
    const rows = await this.pool.query(`SELECT * FROM ocsp_responders WHERE issuer_id = $1 AND not_after > $2 AND not_before <= $2 ORDER BY not_after DESC LIMIT 1`, [issuerId, at]);
    return rows.rows[0] ? toResponder(rows.rows[0]) : undefined;
  }

  async get(id: string): Promise<OcspResponderRecord | undefined> {
    const rows = await this.pool.query(`SELECT * FROM ocsp_responders WHERE id = $1`, [id]);
    return rows.rows[0] ? toResponder(rows.rows[0]) : undefined;
  }

  /** Responders whose certificate ended before `endedBefore` and whose token key is still recorded as present, oldest first. */
  async withKeyEndedBefore(endedBefore: Date, limit: number): Promise<OcspResponderRecord[]> {
    const rows = await this.pool.query(`SELECT * FROM ocsp_responders WHERE key_destroyed_at IS NULL AND not_after < $1 ORDER BY not_after, id LIMIT $2`, [endedBefore, limit]);
    return rows.rows.map(toResponder);
  }

  /** Records that the responder's key is gone from the token, with its audit event, in one statement. */
  async markKeyDestroyed(id: string, at: Date, audit: { actor: string; action: string; details: Record<string, unknown> }): Promise<void> {
    await this.pool.query(
      `WITH marked AS (UPDATE ocsp_responders SET key_destroyed_at = $2 WHERE id = $1 AND key_destroyed_at IS NULL RETURNING id)
       INSERT INTO audit_events (actor, action, target, details) SELECT $3, $4, id, $5::jsonb FROM marked`,
      [id, at, audit.actor, audit.action, JSON.stringify(audit.details)],
    );
  }
}

export type OcspCertStatus = "good" | "revoked";

export interface OcspResponseRecord {
  serial: string;
  issuerId: string;
  certStatus: OcspCertStatus;
  derSha1: Buffer;
  derSha256: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  responderId: string;
  updatedAt?: Date;
}

/** A certificate whose pre-signed response is missing, stale or out of date with its status. */
export interface CertificateStatusRow {
  serial: string;
  issuerId: string;
  status: "valid" | "revoked";
  revokedAt: Date | null;
  reason: number | null;
  notAfter: Date;
}

const toResponse = (r: Record<string, unknown>): OcspResponseRecord => ({
  serial: r.serial as string,
  issuerId: r.issuer_id as string,
  certStatus: r.cert_status as OcspCertStatus,
  derSha1: r.der_sha1 as Buffer,
  derSha256: r.der_sha256 as Buffer,
  thisUpdate: r.this_update as Date,
  nextUpdate: r.next_update as Date,
  responderId: r.responder_id as string,
  updatedAt: r.updated_at as Date,
});

const toStatusRow = (r: Record<string, unknown>): CertificateStatusRow => ({
  serial: r.serial as string,
  issuerId: r.issuer_id as string,
  status: r.status as "valid" | "revoked",
  revokedAt: r.revoked_at as Date | null,
  reason: r.revocation_reason as number | null,
  notAfter: r.not_after as Date,
});

export class OcspResponseStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Stores a batch of signed responses in one statement and returns the serials it wrote.
   * A response never replaces one signed later (two signers racing), a "good" is never
   * stored for a certificate the inventory says is revoked (a sweep that read it before the
   * revocation committed stores after the revocation's own re-sign), and updated_at comes
   * from the database clock so responders polling for changes agree on it.
   */
  async upsert(records: OcspResponseRecord[]): Promise<Set<string>> {
    if (records.length === 0) return new Set();
    // Responders listening on the channel hear of the change when this statement commits;
    // the count over `notified` only makes the statement run that CTE (once).
    const rows = await this.pool.query<{ serial: string }>(
      `WITH written AS (
       INSERT INTO ocsp_responses (serial, issuer_id, cert_status, der_sha1, der_sha256, this_update, next_update, responder_id, updated_at)
       SELECT s, i, cs, d1, d2, tu, nu, rid, clock_timestamp()
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::timestamptz[], $7::timestamptz[], $8::text[]) AS t(s, i, cs, d1, d2, tu, nu, rid)
       WHERE NOT (cs = 'good' AND EXISTS (SELECT 1 FROM certificates c WHERE c.serial = t.s AND c.status = 'revoked'))
       ON CONFLICT (serial) DO UPDATE SET cert_status = EXCLUDED.cert_status, der_sha1 = EXCLUDED.der_sha1, der_sha256 = EXCLUDED.der_sha256,
         this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, responder_id = EXCLUDED.responder_id, updated_at = clock_timestamp()
       WHERE ocsp_responses.this_update <= EXCLUDED.this_update OR EXCLUDED.cert_status <> ocsp_responses.cert_status
       RETURNING serial),
       notified AS (SELECT pg_notify('${CHANGE_CHANNELS.ocspResponses}', '') WHERE EXISTS (SELECT 1 FROM written))
       SELECT serial FROM written WHERE (SELECT count(*) FROM notified) >= 0`,
      [
        records.map((r) => r.serial),
        records.map((r) => r.issuerId),
        records.map((r) => r.certStatus),
        records.map((r) => r.derSha1),
        records.map((r) => r.derSha256),
        records.map((r) => r.thisUpdate),
        records.map((r) => r.nextUpdate),
        records.map((r) => r.responderId),
      ],
    );
    return new Set(rows.rows.map((r) => r.serial));
  }

  async get(serial: string): Promise<OcspResponseRecord | undefined> {
    const rows = await this.pool.query(`SELECT * FROM ocsp_responses WHERE serial = $1`, [serial]);
    return rows.rows[0] ? toResponse(rows.rows[0]) : undefined;
  }

  /**
   * Which responses were written since `since` (inclusive), oldest first, without their DER:
   * responders poll with an overlap and fetch only what they do not hold yet (`many`), so
   * re-reading the overlap costs a few bytes per row, not two responses.
   */
  async changedSince(since: Date, limit = 10_000): Promise<Array<{ serial: string; updatedAt: Date }>> {
    const rows = await this.pool.query<{ serial: string; updatedAt: Date }>(`SELECT serial, updated_at AS "updatedAt" FROM ocsp_responses WHERE updated_at >= $1 ORDER BY updated_at LIMIT $2`, [
      since,
      limit,
    ]);
    return rows.rows;
  }

  async many(serials: string[]): Promise<OcspResponseRecord[]> {
    if (serials.length === 0) return [];
    const rows = await this.pool.query(`SELECT * FROM ocsp_responses WHERE serial = ANY($1::text[])`, [serials]);
    return rows.rows.map(toResponse);
  }

  /** Every response still within its validity, in pages, for a responder warming its memory. */
  async *unexpired(now: Date, pageSize = 10_000): AsyncIterable<OcspResponseRecord[]> {
    let after = "";
    for (;;) {
      const rows = await this.pool.query(`SELECT * FROM ocsp_responses WHERE serial > $1 AND next_update > $2 ORDER BY serial LIMIT $3`, [after, now, pageSize]);
      if (rows.rows.length === 0) return;
      yield rows.rows.map(toResponse);
      after = rows.rows[rows.rows.length - 1]!.serial as string;
    }
  }

  /**
   * Unexpired certificates whose pre-signed response is missing, says another status,
   * was signed by a responder that is no longer current, or is due for refresh.
   * `changedSince` narrows the scan to certificates issued or revoked since then.
   * With `after` (a full sweep), in serial order from just after that serial: the sweep
   * pages through the inventory by serial, so each page reads its own rows instead of
   * re-scanning every certificate already signed (a full sweep of a large inventory was
   * quadratic). A poll (`changedSince`) finds few rows through the issued_at/revoked_at
   * indexes and needs no order.
   */
  async needingResponses(options: {
    now: Date;
    refreshBefore: Date;
    currentResponders: string[];
    issuerIds: string[];
    changedSince?: Date;
    after?: string;
    limit: number;
  }): Promise<CertificateStatusRow[]> {
    const params: unknown[] = [options.now, options.refreshBefore, options.currentResponders, options.limit, options.issuerIds];
    let narrow = "";
    let order = "";
    if (options.changedSince) {
      params.push(options.changedSince);
      narrow += ` AND (c.issued_at >= $${params.length} OR c.revoked_at >= $${params.length})`;
    }
    if (options.after !== undefined) {
      params.push(options.after);
      narrow += ` AND c.serial > $${params.length}`;
      order = "ORDER BY c.serial";
    }
    const rows = await this.pool.query(
      `SELECT c.serial, c.issuer_id, c.status, c.revoked_at, c.revocation_reason, c.not_after
       FROM certificates c LEFT JOIN ocsp_responses r ON r.serial = c.serial
       WHERE c.status IN ('valid', 'revoked') AND c.not_after > $1 AND c.issuer_id = ANY($5::text[])${narrow}
         AND (r.serial IS NULL OR r.next_update < $2 OR r.cert_status <> (CASE c.status WHEN 'valid' THEN 'good' ELSE 'revoked' END)
              OR NOT (r.responder_id = ANY($3::text[])))
       ${order}
       LIMIT $4`,
      params,
    );
    return rows.rows.map(toStatusRow);
  }

  async statusRows(serials: string[]): Promise<CertificateStatusRow[]> {
    const rows = await this.pool.query(
      `SELECT serial, issuer_id, status, revoked_at, revocation_reason, not_after FROM certificates WHERE serial = ANY($1::text[]) AND status IN ('valid', 'revoked')`,
      [serials],
    );
    return rows.rows.map(toStatusRow);
  }

  /** The status the inventory holds for one serial, for a responder that has no response yet. */
  async certificateStatus(
    serial: string,
  ): Promise<{ issuerId: string; status: "pending" | "valid" | "revoked" | "failed"; revokedAt: Date | null; reason: number | null; notAfter: Date } | undefined> {
    const rows = await this.pool.query(`SELECT issuer_id, status, revoked_at, revocation_reason, not_after FROM certificates WHERE serial = $1`, [serial]);
    const r = rows.rows[0];
    return r ? { issuerId: r.issuer_id, status: r.status, revokedAt: r.revoked_at, reason: r.revocation_reason, notAfter: r.not_after } : undefined;
  }
}
