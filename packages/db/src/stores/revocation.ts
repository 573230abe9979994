// Revocation status storage: published CRLs, delegated OCSP responders and pre-signed OCSP
// responses. CRL building streams up to millions of rows through a cursor inside a locked
// transaction, and large DER values go to and from PostgreSQL as binary parameters.
import type pg from "pg";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
import { CHANGE_CHANNELS } from "../notify.ts";
import { INSERT_AUDIT_EVENTS, auditValues } from "./audit.ts";

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
    number: row[`${prefix}_number`] as bigint,
    thisUpdate: row[`${prefix}_this_update`] as Date,
    nextUpdate: row[`${prefix}_next_update`] as Date,
    entries: row[`${prefix}_entries`] as number,
    etag: row[`${prefix}_etag`] as string,
    ...(prefix === "delta" && row.delta_base_number !== null ? { baseNumber: row.delta_base_number as bigint } : {}),
  };
};

const META_COLUMNS = `issuer_id, last_number, full_number, full_this_update, full_next_update, full_entries, full_etag,
  delta_number, delta_base_number, delta_this_update, delta_next_update, delta_entries, delta_etag, updated_at`;

/** The crl_state row's two CRLs' columns, each group as its CrlMeta. */
const toState = (row: Record<string, unknown>): CrlStateRecord => ({
  issuerId: row.issuer_id as string,
  lastNumber: row.last_number as bigint,
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
      await execute(client, `INSERT INTO crl_state (issuer_id) VALUES ($1) ON CONFLICT (issuer_id) DO NOTHING`, [issuerId]);
      const locked = await queryOne<Record<string, unknown>>(client, `SELECT ${META_COLUMNS} FROM crl_state WHERE issuer_id = $1 FOR UPDATE`, [issuerId]);
      const previous = toState(locked!);
      const number = previous.lastNumber + 1n;
      // Storage EXTERNAL: the parts are joined once and stored again, so compressing each is wasted work.
      await execute(client, `CREATE TEMP TABLE crl_parts (seq int4 PRIMARY KEY, part bytea NOT NULL) ON COMMIT DROP; ALTER TABLE crl_parts ALTER COLUMN part SET STORAGE EXTERNAL`);
      const writePart = async (seq: number, bytes: Buffer) => {
        await execute(client, `INSERT INTO crl_parts (seq, part) VALUES ($1, $2)`, [seq, bytes]);
      };
      let cursors = 0;
      const revoked = (filter: { notAfterFrom: Date; revokedFrom?: Date }): RevokedSource => {
        const params: unknown[] = [issuerId, filter.notAfterFrom];
        if (filter.revokedFrom) params.push(filter.revokedFrom);
        const where = `issuer_id = $1 AND status = 'revoked' AND not_after >= $2${filter.revokedFrom ? " AND revoked_at >= $3" : ""}`;
        return {
          shape: async (asOf) => {
            const rows = await query<Omit<EntryShape, "count"> & { count: bigint }>(
              client,
              `SELECT length(serial) AS "serialHexLength", left(serial, 1) IN ('8','9','a','b','c','d','e','f','A','B','C','D','E','F') AS "signBit",
                      coalesce(revocation_reason, 0) <> 0 AS "hasReason", least(revoked_at, $${params.length + 1}) >= '2050-01-01T00:00:00Z' AS "from2050", count(*)::int8 AS count
               FROM certificates WHERE ${where} GROUP BY 1, 2, 3, 4`,
              [...params, asOf],
            );
            return rows.map((r) => ({ ...r, count: Number(r.count) }));
          },
          [Symbol.asyncIterator]: async function* () {
            const name = `crl_entries_${cursors++}`;
            // No ORDER BY: RFC 5280 does not order CRL entries, and sorting a million rows
            // would cost the database memory and time for nothing.
            await execute(
              client,
              `DECLARE ${name} NO SCROLL CURSOR FOR
                 SELECT serial AS "serialHex", floor(extract(epoch FROM revoked_at))::float8 AS "revokedAt", coalesce(revocation_reason, 0) AS reason
                 FROM certificates WHERE ${where}`,
              params,
            );
            try {
              for (;;) {
                const batch = await query<RevokedEntry>(client, `FETCH ${CURSOR_BATCH} FROM ${name}`);
                if (batch.length === 0) break;
                yield batch;
              }
            } finally {
              await execute(client, `CLOSE ${name}`);
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
        await execute(
          client,
          `UPDATE crl_state SET last_number = $2, full_number = $2, full_der = ${der}, full_this_update = $3, full_next_update = $4, full_entries = $5, full_etag = $6, updated_at = clock_timestamp() WHERE issuer_id = $1`,
          [issuerId, number.toString(), built.thisUpdate, built.nextUpdate, built.entries, built.etag],
        );
      } else {
        await execute(
          client,
          `UPDATE crl_state SET last_number = $2, delta_number = $2, delta_base_number = $7, delta_der = ${der}, delta_this_update = $3, delta_next_update = $4, delta_entries = $5, delta_etag = $6, updated_at = clock_timestamp() WHERE issuer_id = $1`,
          [issuerId, number.toString(), built.thisUpdate, built.nextUpdate, built.entries, built.etag, (built.baseNumber ?? 0n).toString()],
        );
      }
      // Publishers' CRL caches listening on the channel re-read at commit.
      await execute(client, `SELECT pg_notify('${CHANGE_CHANNELS.crls}', '')`);
      return meta;
    });
  }

  async state(issuerId: string): Promise<CrlStateRecord | undefined> {
    const row = await queryOne<Record<string, unknown>>(this.pool, `SELECT ${META_COLUMNS} FROM crl_state WHERE issuer_id = $1`, [issuerId]);
    return row ? toState(row) : undefined;
  }

  async states(): Promise<CrlStateRecord[]> {
    return (await query<Record<string, unknown>>(this.pool, `SELECT ${META_COLUMNS} FROM crl_state ORDER BY issuer_id`)).map(toState);
  }

  /**
   * The published DER with its metadata, read from one snapshot (never a torn pair). A
   * large CRL is read in slices, so a 50 MB CRL never turns into one 100 MB hex string.
   */
  async read(issuerId: string, kind: CrlKind): Promise<{ der: Buffer; meta: CrlMeta } | undefined> {
    return inTransaction(
      this.pool,
      async (client) => {
        const head = await queryOne<Omit<CrlMeta, "baseNumber"> & { baseNumber: bigint | null; size: number }>(
          client,
          `SELECT ${kind}_number AS number, ${kind}_this_update AS "thisUpdate", ${kind}_next_update AS "nextUpdate", ${kind}_entries AS entries, ${kind}_etag AS etag,
                ${kind === "delta" ? "delta_base_number" : "NULL::int8"} AS "baseNumber", octet_length(${kind}_der) AS size
         FROM crl_state WHERE issuer_id = $1 AND ${kind}_der IS NOT NULL`,
          [issuerId],
        );
        if (!head) return undefined;
        const { size, baseNumber, ...meta } = head;
        const der = Buffer.allocUnsafe(size);
        for (let offset = 0; offset < der.length; offset += READ_SLICE_BYTES) {
          const slice = await queryOne<{ part: Buffer }>(client, `SELECT substring(${kind}_der FROM $2 FOR $3) AS part FROM crl_state WHERE issuer_id = $1`, [issuerId, offset + 1, READ_SLICE_BYTES]);
          slice!.part.copy(der, offset);
        }
        return { der, meta: kind === "delta" ? { ...meta, baseNumber: baseNumber! } : meta };
      },
      { isolation: "repeatable read", readOnly: true },
    );
  }

  /** Certificates of an issuer revoked since `since`: what CRL publishers react to. */
  async revokedSince(since: Date): Promise<Array<{ issuerId: string; latest: Date }>> {
    return query<{ issuerId: string; latest: Date }>(this.pool, `SELECT issuer_id AS "issuerId", max(revoked_at) AS latest FROM certificates WHERE revoked_at >= $1 GROUP BY issuer_id`, [since]);
  }

  /** The latest notAfter of any certificate an issuer signed (responder certificates aside): retired issuers publish until then. */
  async lastExpiry(issuerId: string): Promise<Date | undefined> {
    // Delegated OCSP responder certificates do not count: they exist for the other certificates.
    const row = await queryOne<{ last: Date | null }>(
      this.pool,
      `SELECT max(not_after) AS last FROM certificates WHERE issuer_id = $1 AND status IN ('valid', 'revoked') AND profile <> 'ocsp-responder'`,
      [issuerId],
    );
    return row?.last ?? undefined;
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

const RESPONDER_COLUMNS = `id, issuer_id AS "issuerId", key_uri AS "keyUri", certificate_der AS "certificateDer", not_before AS "notBefore", not_after AS "notAfter"`;

export class OcspResponderStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(record: OcspResponderRecord): Promise<void> {
    await execute(this.pool, `INSERT INTO ocsp_responders (id, issuer_id, key_uri, certificate_der, not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6)`, [
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
    return queryOne<OcspResponderRecord>(this.pool, `SELECT ${RESPONDER_COLUMNS} FROM ocsp_responders WHERE issuer_id = $1 AND not_after > $2 AND not_before <= $2 ORDER BY not_after DESC LIMIT 1`, [
      issuerId,
      at,
    ]);
  }

  async get(id: string): Promise<OcspResponderRecord | undefined> {
    return queryOne<OcspResponderRecord>(this.pool, `SELECT ${RESPONDER_COLUMNS} FROM ocsp_responders WHERE id = $1`, [id]);
  }

  /** Responders whose certificate ended before `endedBefore` and whose token key is still recorded as present, oldest first. */
  async withKeyEndedBefore(endedBefore: Date, limit: number): Promise<OcspResponderRecord[]> {
    return query<OcspResponderRecord>(this.pool, `SELECT ${RESPONDER_COLUMNS} FROM ocsp_responders WHERE key_destroyed_at IS NULL AND not_after < $1 ORDER BY not_after, id LIMIT $2`, [
      endedBefore,
      limit,
    ]);
  }

  /** Records that the responder's key is gone from the token, with its audit event, in one statement. */
  async markKeyDestroyed(id: string, at: Date, audit: { actor: string; action: string; details: Record<string, unknown> }): Promise<void> {
    await execute(
      this.pool,
      `WITH marked AS (UPDATE ocsp_responders SET key_destroyed_at = $2 WHERE id = $1 AND key_destroyed_at IS NULL RETURNING id)
       ${INSERT_AUDIT_EVENTS} SELECT $3, $4, $5, $6, $7, $8::jsonb FROM marked`,
      [id, at, ...auditValues({ ...audit, target: id })],
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

const RESPONSE_COLUMNS = `serial, issuer_id AS "issuerId", cert_status AS "certStatus", der_sha1 AS "derSha1", der_sha256 AS "derSha256",
  this_update AS "thisUpdate", next_update AS "nextUpdate", responder_id AS "responderId", updated_at AS "updatedAt"`;

/** A certificate's status columns, of the table aliased `table`, named as CertificateStatusRow names them. */
const statusColumns = (table: string) =>
  `${table}.serial, ${table}.issuer_id AS "issuerId", ${table}.status, ${table}.revoked_at AS "revokedAt", ${table}.revocation_reason AS reason, ${table}.not_after AS "notAfter"`;

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
    const rows = await query<{ serial: string }>(
      this.pool,
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
    return new Set(rows.map((r) => r.serial));
  }

  async get(serial: string): Promise<OcspResponseRecord | undefined> {
    return queryOne<OcspResponseRecord>(this.pool, `SELECT ${RESPONSE_COLUMNS} FROM ocsp_responses WHERE serial = $1`, [serial]);
  }

  /**
   * Which responses were written since `since` (inclusive), oldest first, without their DER:
   * responders poll with an overlap and fetch only what they do not hold yet (`many`), so
   * re-reading the overlap costs a few bytes per row, not two responses.
   */
  async changedSince(since: Date, limit = 10_000): Promise<Array<{ serial: string; updatedAt: Date }>> {
    return query<{ serial: string; updatedAt: Date }>(this.pool, `SELECT serial, updated_at AS "updatedAt" FROM ocsp_responses WHERE updated_at >= $1 ORDER BY updated_at LIMIT $2`, [since, limit]);
  }

  async many(serials: string[]): Promise<OcspResponseRecord[]> {
    if (serials.length === 0) return [];
    return query<OcspResponseRecord>(this.pool, `SELECT ${RESPONSE_COLUMNS} FROM ocsp_responses WHERE serial = ANY($1::text[])`, [serials]);
  }

  /** Every response still within its validity, in pages, for a responder warming its memory. */
  async *unexpired(now: Date, pageSize = 10_000): AsyncIterable<OcspResponseRecord[]> {
    let after = "";
    for (;;) {
      const rows = await query<OcspResponseRecord>(this.pool, `SELECT ${RESPONSE_COLUMNS} FROM ocsp_responses WHERE serial > $1 AND next_update > $2 ORDER BY serial LIMIT $3`, [after, now, pageSize]);
      if (rows.length === 0) return;
      yield rows;
      after = rows[rows.length - 1]!.serial;
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
    return query<CertificateStatusRow>(
      this.pool,
      `SELECT ${statusColumns("c")}
       FROM certificates c LEFT JOIN ocsp_responses r ON r.serial = c.serial
       WHERE c.status IN ('valid', 'revoked') AND c.not_after > $1 AND c.issuer_id = ANY($5::text[])${narrow}
         AND (r.serial IS NULL OR r.next_update < $2 OR r.cert_status <> (CASE c.status WHEN 'valid' THEN 'good' ELSE 'revoked' END)
              OR NOT (r.responder_id = ANY($3::text[])))
       ${order}
       LIMIT $4`,
      params,
    );
  }

  async statusRows(serials: string[]): Promise<CertificateStatusRow[]> {
    return query<CertificateStatusRow>(this.pool, `SELECT ${statusColumns("c")} FROM certificates c WHERE serial = ANY($1::text[]) AND status IN ('valid', 'revoked')`, [serials]);
  }

  /** The status the inventory holds for one serial, for a responder that has no response yet. */
  async certificateStatus(
    serial: string,
  ): Promise<{ issuerId: string; status: "pending" | "valid" | "revoked" | "failed"; revokedAt: Date | null; reason: number | null; notAfter: Date } | undefined> {
    return queryOne(this.pool, `SELECT issuer_id AS "issuerId", status, revoked_at AS "revokedAt", revocation_reason AS reason, not_after AS "notAfter" FROM certificates WHERE serial = $1`, [serial]);
  }
}
