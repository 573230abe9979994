import type pg from "pg";
import type { Certificate } from "../generated/prisma/client.ts";
import { AuditStore, INSERT_AUDIT_EVENTS, auditValues, boundAuditEntry, type AuditEntry } from "./audit.ts";
import { Batcher } from "../batcher.ts";
import { execute, query, queryOne, type Queryable } from "../sql.ts";
import { inTransaction } from "../transaction.ts";

export type CertificateRecord = Omit<Certificate, "publicKeySpki" | "tbsDer" | "der"> & { publicKeySpki: Buffer; tbsDer: Buffer; der: Buffer | null };

/** What the CA intends to sign, recorded before the token signs anything. */
export interface PlannedCertificate {
  serial: string;
  issuerId: string;
  profile: string;
  subject: string;
  sans: string[];
  keyAlgorithm: string;
  publicKeySpki: Buffer;
  notBefore: Date;
  notAfter: Date;
  tbsDer: Buffer;
  requester: string;
  provisionerId?: string | undefined;
  autoRenew?: boolean;
  predecessorSerial?: string | undefined;
  /**
   * Services' certificates come only from the active, unrevoked intermediate, checked in the
   * statement that records the intent: a process whose keyring has not yet seen a rotation
   * or an emergency revocation in another process cannot sign with the old key. The CA's
   * own OCSP responder certificates are also made for retired and revoked issuers.
   */
  onlyFromActiveIssuer: boolean;
}

/** Status as users see it: "expired" is a valid certificate past its notAfter. */
export type CertificateState = "pending" | "valid" | "revoked" | "failed" | "expired";

export interface CertificateQuery {
  status?: CertificateState;
  issuerId?: string;
  profile?: string;
  /** text in the subject or a SAN, case-insensitive */
  q?: string;
  /** lowercase hex the serial starts with (the caller normalises what was typed) */
  serialPrefix?: string;
  expiresBefore?: Date;
  expiresAfter?: Date;
  provisionerId?: string;
  /** only certificates ordered by this ACME account (acme_orders.certificate_serial) */
  acmeAccountId?: string;
  /** only the CA's own certificates (true) or only services' (false), as `marks` tells them apart */
  internal?: { only: boolean; marks: InternalMarks };
  /** by notAfter: soonest first (asc, the default) or latest first */
  order?: "asc" | "desc";
  limit?: number;
  /** opaque, from a previous page's nextCursor */
  cursor?: string;
}

/** What makes a certificate the CA's own (the authority decides; this package only filters on it). */
export interface InternalMarks {
  profiles: string[];
  requesters: string[];
}

/** Counts by state, for services' certificates and the CA's own separately. */
export interface InventoryOverview {
  services: Record<CertificateState, number>;
  internal: Record<CertificateState, number>;
  /** services' valid certificates expiring within 24 h, 7 and 30 days */
  expiring: { next24h: number; next7d: number; next30d: number };
  /** services' valid certificates expiring on each UTC day of the next 30 */
  expiryByDay: Array<{ day: string; count: number }>;
  /** services' valid unexpired certificates marked for auto-renewal */
  autoRenewEnabled: number;
}

export class DuplicateSerialError extends Error {
  constructor(serial: string) {
    super(`serial ${serial} already exists in the inventory`);
  }
}

/** The intent names an issuer that is no longer the active, unrevoked one; nothing was recorded. */
export class IssuerNotActiveError extends Error {
  constructor(readonly issuerId: string) {
    super(`issuer ${issuerId} is no longer the active intermediate (rotated or revoked)`);
  }
}

/** The predecessor already has a pending or valid successor (one live successor per certificate). */
export class SuccessorExistsError extends Error {
  constructor(
    readonly predecessorSerial: string,
    readonly successorSerial: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`certificate ${predecessorSerial} already has a live successor${successorSerial ? ` ${successorSerial}` : ""}`, options);
  }
}

/** The unique index that keeps one live successor per certificate (see its migration). */
const ONE_LIVE_SUCCESSOR = "certificates_one_live_successor_idx";

/** What a revocation changed: the certificate, and for keyCompromise its live successors. */
export interface RevokedChain {
  revoked: CertificateRecord;
  /** successors (transitively) revoked with it, oldest first */
  successors: CertificateRecord[];
}

function encodeCursor(row: { notAfter: Date; serial: string }): string {
  return Buffer.from(`${row.notAfter.getTime()}:${row.serial}`).toString("base64url");
}

/** 9999-12-31: no certificate is valid later, and every such time fits a timestamptz. */
const MAX_CURSOR_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function decodeCursor(cursor: string): { notAfter: Date; serial: string } {
  const [time, serial] = Buffer.from(cursor, "base64url").toString().split(":");
  const ms = Number(time);
  // a notAfter the database can hold (JavaScript dates reach further than PostgreSQL's)
  const inRange = Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_CURSOR_TIME_MS;
  if (!serial || !/^[0-9a-f]{1,40}$/.test(serial) || !inRange) throw new RangeError("is not one this API returned (pass nextCursor from the previous page as it is)");
  return { notAfter: new Date(ms), serial };
}

export class CertificateStore {
  private readonly intents: Batcher<PlannedCertificate, "issuer_not_active" | undefined>;
  /** per item: undefined when stored, else why not */
  private readonly issued: Batcher<{ serial: string; der: Buffer; audit: AuditEntry }, string | undefined>;

  // The two writes of every issuance go through raw SQL with group commit: with Prisma
  // (one create, then an interactive transaction of four statements) the database work
  // was the largest cost of an issuance. Each batch is one statement, so it is atomic.
  constructor(private readonly pool: pg.Pool) {
    this.intents = new Batcher((items) => insertIntents(pool, items));
    this.issued = new Batcher((items) => storeIssued(pool, items));
  }

  /** Stores the planned certificate as `pending`. The primary key makes serials unique. */
  async recordIntent(planned: PlannedCertificate): Promise<void> {
    let refused: "issuer_not_active" | undefined;
    try {
      refused = await this.intents.submit(planned);
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code === "23505" && e.constraint === ONE_LIVE_SUCCESSOR && planned.predecessorSerial) {
        throw new SuccessorExistsError(planned.predecessorSerial, await this.liveSuccessorOf(planned.predecessorSerial).catch(() => undefined), { cause: error });
      }
      if (e.code === "23505") throw new DuplicateSerialError(planned.serial);
      throw error;
    }
    if (refused) throw new IssuerNotActiveError(planned.issuerId);
  }

  /** The pending or valid certificate that names `serial` as its predecessor, if any. */
  async liveSuccessorOf(serial: string): Promise<string | undefined> {
    const [row] = await query<{ serial: string }>(this.pool, `SELECT serial FROM certificates WHERE predecessor_serial = $1 AND status IN ('pending', 'valid') LIMIT 1`, [serial]);
    return row?.serial;
  }

  /**
   * The signed certificate replaces the intent, the predecessor (on renewal) learns its
   * successor, and the audit event is written: one statement, so all or nothing.
   */
  async markIssued(serial: string, der: Buffer, audit: AuditEntry): Promise<void> {
    const refused = await this.issued.submit({ serial, der, audit: boundAuditEntry(audit) });
    if (refused) throw new Error(refused);
  }

  /** The token refused or failed: the intent stays, marked failed, for the record. */
  async markFailed(serial: string, audit: AuditEntry): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      const failed = await execute(client, `UPDATE certificates SET status = 'failed' WHERE serial = $1 AND status = 'pending'`, [serial]);
      if (failed) await new AuditStore(client).record({ ...audit, outcome: "error" });
    });
  }

  /**
   * valid → revoked, with its audit event, in one transaction. Returns the row as it is
   * afterwards, or the reason nothing changed.
   */
  async revoke(serial: string, reason: number, at: Date, audit: AuditEntry): Promise<{ revoked: CertificateRecord } | { refused: "not_found" | "already_revoked" | "not_issued" }> {
    // One statement, so it is atomic without an interactive transaction (whose 5 s
    // timeout failed revocations under heavy load in the soak test).
    const [result] = await query<{ before: string | null; revoked: boolean }>(
      this.pool,
      `WITH target AS (SELECT status FROM certificates WHERE serial = $1),
       done AS (
         UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3
         WHERE serial = $1 AND status = 'valid' RETURNING serial
       ), audited AS (
         ${INSERT_AUDIT_EVENTS} SELECT $4, $5, $6, $7, $8, $9::jsonb FROM done
       )
       SELECT (SELECT status::text FROM target) AS before, EXISTS (SELECT 1 FROM done) AS revoked`,
      [serial, at, reason, ...auditValues({ ...audit, outcome: "ok" })],
    );
    if (!result?.revoked) {
      if (!result?.before) return { refused: "not_found" };
      return { refused: result.before === "revoked" ? "already_revoked" : "not_issued" };
    }
    return { revoked: (await this.get(serial))! };
  }

  /**
   * Revokes a certificate whose key is compromised and every live successor of it,
   * transitively, in one transaction with an audit event each: whoever held the key
   * could have renewed it (even onto a new key), so nothing descended from it may
   * outlive this revocation. Pending successors become failed, so the signature
   * in flight is never released.
   */
  async revokeWithSuccessors(serial: string, reason: number, at: Date, audit: AuditEntry): Promise<RevokedChain | { refused: "not_found" | "already_revoked" | "not_issued" }> {
    return inTransaction(this.pool, async (client) => {
      const target = await queryOne<{ status: string }>(client, `SELECT status::text AS status FROM certificates WHERE serial = $1 FOR UPDATE`, [serial]);
      if (!target) return { refused: "not_found" as const };
      if (target.status !== "valid") return { refused: target.status === "revoked" ? ("already_revoked" as const) : ("not_issued" as const) };
      // Lock the family until no new member appears: a renewal stores its successor only
      // while it can share-lock a predecessor that is not revoked (storeIssued), so once
      // every member is locked here no successor can become valid behind our back.
      let family: Array<{ serial: string; status: string }> = [];
      for (let known = -1; family.length > known; ) {
        known = family.length;
        family = await query<{ serial: string; status: string }>(
          client,
          `WITH RECURSIVE family AS (
             SELECT serial FROM certificates WHERE predecessor_serial = $1
             UNION SELECT c.serial FROM certificates c JOIN family f ON c.predecessor_serial = f.serial
           )
           SELECT c.serial, c.status::text AS status FROM certificates c JOIN family f USING (serial) ORDER BY c.created_at, c.serial FOR UPDATE OF c`,
          [serial],
        );
      }
      // Every member is locked, so the statuses read above are still current.
      const live = family.filter((m) => m.status === "valid").map((m) => m.serial);
      const pending = family.filter((m) => m.status === "pending").map((m) => m.serial);
      await execute(client, `UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3 WHERE serial = ANY($1::text[])`, [[serial, ...live], at, reason]);
      if (pending.length) await execute(client, `UPDATE certificates SET status = 'failed' WHERE serial = ANY($1::text[])`, [pending]);
      const auditStore = new AuditStore(client);
      await auditStore.record({ ...audit, target: serial, outcome: "ok" });
      for (const successor of live) await auditStore.record({ ...audit, target: successor, outcome: "ok", details: { ...audit.details, successorOf: serial } });
      for (const successor of pending)
        await auditStore.record({
          ...audit,
          action: "certificate.issue",
          target: successor,
          outcome: "error",
          details: { reason: `predecessor ${serial} was revoked (keyCompromise) before this renewal was stored`, successorOf: serial },
        });
      const records = await query<CertificateRecord>(client, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE serial = ANY($1::text[])`, [[serial, ...live]]);
      const bySerial = new Map(records.map((r) => [r.serial, r]));
      return { revoked: bySerial.get(serial)!, successors: live.map((s) => bySerial.get(s)!) };
    });
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    return queryOne<CertificateRecord>(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE serial = $1`, [serial]);
  }

  /** Certificate counts by the state users see (expired = valid past notAfter). */
  async countsByState(now: Date): Promise<Record<CertificateState, number>> {
    const rows = await query<{ state: CertificateState; n: bigint }>(
      this.pool,
      `SELECT CASE WHEN status = 'valid' AND not_after < $1 THEN 'expired' ELSE status::text END AS state, count(*) AS n
       FROM certificates GROUP BY 1`,
      [now],
    );
    const counts: Record<CertificateState, number> = { pending: 0, valid: 0, revoked: 0, failed: 0, expired: 0 };
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  /** The console's overview: one pass over the (status, not_after) index per question. */
  async overview(now: Date, marks: InternalMarks): Promise<InventoryOverview> {
    const internal = `(profile = ANY($2::text[]) OR requester = ANY($3::text[]))`;
    const params = [now, marks.profiles, marks.requesters];
    const byState = await query<{ state: CertificateState; internal: boolean; n: bigint }>(
      this.pool,
      `SELECT CASE WHEN status = 'valid' AND not_after < $1::timestamptz THEN 'expired' ELSE status::text END AS state, ${internal} AS internal, count(*) AS n
       FROM certificates GROUP BY 1, 2`,
      params,
    );
    const zero = (): Record<CertificateState, number> => ({ pending: 0, valid: 0, revoked: 0, failed: 0, expired: 0 });
    const services = zero();
    const own = zero();
    for (const row of byState) (row.internal ? own : services)[row.state] += Number(row.n);
    const [soon] = await query<{ h24: bigint; d7: bigint; d30: bigint; auto: bigint }>(
      this.pool,
      `SELECT count(*) FILTER (WHERE not_after < $1::timestamptz + interval '1 day') AS h24,
              count(*) FILTER (WHERE not_after < $1::timestamptz + interval '7 days') AS d7,
              count(*) FILTER (WHERE not_after < $1::timestamptz + interval '30 days') AS d30,
              count(*) FILTER (WHERE auto_renew) AS auto
       FROM certificates WHERE status = 'valid' AND not_after >= $1::timestamptz AND NOT ${internal}`,
      params,
    );
    const days = await query<{ day: string; n: bigint }>(
      this.pool,
      `SELECT to_char(date_trunc('day', not_after AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, count(*) AS n
       FROM certificates WHERE status = 'valid' AND not_after >= $1::timestamptz AND not_after < $1::timestamptz + interval '30 days' AND NOT ${internal}
       GROUP BY 1 ORDER BY 1`,
      params,
    );
    return {
      services,
      internal: own,
      expiring: { next24h: Number(soon?.h24 ?? 0), next7d: Number(soon?.d7 ?? 0), next30d: Number(soon?.d30 ?? 0) },
      expiryByDay: days.map((d) => ({ day: d.day, count: Number(d.n) })),
      autoRenewEnabled: Number(soon?.auto ?? 0),
    };
  }

  /** Services' valid, unexpired certificates each issuer signed (what revoking it would affect). */
  async liveByIssuer(now: Date, marks: InternalMarks): Promise<Map<string, number>> {
    const rows = await query<{ issuerId: string; n: bigint }>(
      this.pool,
      `SELECT issuer_id AS "issuerId", count(*) AS n FROM certificates
       WHERE status = 'valid' AND not_after > $1 AND NOT (profile = ANY($2::text[]) OR requester = ANY($3::text[]))
       GROUP BY 1`,
      [now, marks.profiles, marks.requesters],
    );
    return new Map(rows.map((r) => [r.issuerId, Number(r.n)]));
  }

  /** Valid certificates expiring on each UTC day from `now` for `days` days (index-backed range scan). */
  async expiryByDay(now: Date, days: number): Promise<Array<{ day: string; count: number }>> {
    const until = new Date(now.getTime() + days * 86_400_000);
    const rows = await query<{ day: string; n: bigint }>(
      this.pool,
      `SELECT to_char(date_trunc('day', not_after AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, count(*) AS n
       FROM certificates WHERE status = 'valid' AND not_after >= $1 AND not_after < $2
       GROUP BY 1 ORDER BY 1`,
      [now, until],
    );
    return rows.map((r) => ({ day: r.day, count: Number(r.n) }));
  }

  /** Pending intents older than `before`: what a crash between record and store left behind. */
  async pendingBefore(before: Date): Promise<CertificateRecord[]> {
    return query<CertificateRecord>(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE status = 'pending' AND created_at < $1 LIMIT 1000`, [before]);
  }

  /**
   * Keyset pagination on (notAfter, serial): stable under inserts and index-backed. Raw SQL
   * rather than Prisma: a text search picks its plan from sampled statistics (see
   * textSearchPlan), and mapping 100 rows here costs a fraction of Prisma's.
   */
  async list(query: CertificateQuery, now = new Date()): Promise<{ items: CertificateRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const filters = listFilters(query, now);
    // `q` is plain text: LIKE's wildcards and escape character in it match themselves.
    const pattern = query.q ? `%${query.q.toLowerCase().replace(/[\\%_]/g, "\\$&")}%` : undefined;
    // Latest-first lists are the console's (small, recent pages): the planner alone decides.
    const plan = pattern && query.order !== "desc" ? textSearchPlan(await this.searchSample(), pattern, limit + 1) : undefined;
    const rows = plan?.walk
      ? await this.walkThenIndex(filters, pattern!, plan.walk, plan.indexPattern, limit + 1)
      : await this.select(filters, pattern, plan?.indexPattern, limit + 1, query.order === "desc" ? "DESC" : "ASC");
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /**
   * The first `n` rows in list order matching the filters and, when given, the LIKE
   * `pattern`. With `indexPattern` (a literal piece of the term whose trigrams are rare) the
   * trigram index is searched for that piece only and the full pattern is checked on the
   * rows it finds: GIN reads the posting list of every trigram it is given, and the
   * trigrams every row has (".example.com", "cluster.local") cost tens of milliseconds.
   */
  private select(filters: SqlFilters, pattern: string | undefined, indexPattern: string | undefined, n: number, direction: "ASC" | "DESC" = "ASC"): Promise<CertificateRecord[]> {
    const { where, params, param } = filters.copy();
    if (pattern && indexPattern && indexPattern !== pattern) where.push(`search_text LIKE ${param(indexPattern)}`, `textlike(search_text, ${param(pattern)})`);
    else if (pattern) where.push(`search_text LIKE ${param(pattern)}`);
    return query<CertificateRecord>(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates ${whereSql(where)} ORDER BY not_after ${direction}, serial ${direction} LIMIT ${param(n)}`, params);
  }

  /**
   * A term most rows match: walk the list order and test each row, at most `window` rows;
   * if those held fewer than `n` matches, the trigram index finds the rest after them.
   */
  private async walkThenIndex(filters: SqlFilters, pattern: string, window: number, indexPattern: string | undefined, n: number): Promise<CertificateRecord[]> {
    const { where, params, param } = filters.copy();
    const rows = await query<CertificateRecord>(
      this.pool,
      `SELECT * FROM (SELECT ${CERTIFICATE_COLUMNS} FROM certificates ${whereSql(where)} ORDER BY not_after, serial LIMIT ${param(window)}) w
       WHERE textlike("searchText", ${param(pattern)}) ORDER BY "notAfter", serial LIMIT ${param(n)}`,
      params,
    );
    if (rows.length >= n) return rows;
    const edge = filters.copy();
    const [last] = await query<{ notAfter: Date; serial: string }>(
      this.pool,
      `SELECT not_after AS "notAfter", serial FROM certificates ${whereSql(edge.where)} ORDER BY not_after, serial OFFSET ${edge.param(window - 1)} LIMIT 1`,
      edge.params,
    );
    if (!last) return rows; // the window held every row the filters allow
    return [...rows, ...(await this.select(filters.after(last), pattern, indexPattern, n - rows.length))];
  }

  private sample: { until: number; value: Promise<SearchTextSample | undefined> } | undefined;

  /** Trigram statistics of a sample of rows, taken again every few minutes (every minute while the table is small). */
  private searchSample(): Promise<SearchTextSample | undefined> {
    if (!this.sample || Date.now() > this.sample.until) {
      const entry = { until: Date.now() + SAMPLE_TTL_MS, value: takeSample(this.pool).catch(() => undefined) };
      void entry.value.then((sample) => {
        if (!sample) entry.until = Date.now() + 60_000;
      });
      this.sample = entry;
    }
    return this.sample.value;
  }
}

/** Every column, named as the Certificate model names them, so rows are CertificateRecords. */
export const CERTIFICATE_COLUMNS = `serial, issuer_id AS "issuerId", status::text AS status, profile, subject, sans, search_text AS "searchText",
  key_algorithm AS "keyAlgorithm", public_key_spki AS "publicKeySpki", not_before AS "notBefore", not_after AS "notAfter",
  tbs_der AS "tbsDer", der, requester, provisioner_id AS "provisionerId", auto_renew AS "autoRenew",
  predecessor_serial AS "predecessorSerial", successor_serial AS "successorSerial", revoked_at AS "revokedAt",
  revocation_reason AS "revocationReason", created_at AS "createdAt", issued_at AS "issuedAt"`;

const whereSql = (where: string[]) => (where.length ? `WHERE ${where.join(" AND ")}` : "");

/** SQL conditions with numbered parameters; copy() before adding to them. */
class SqlFilters {
  constructor(
    readonly where: string[] = [],
    readonly params: unknown[] = [],
  ) {}

  param = (value: unknown): string => `$${this.params.push(value)}`;

  copy(): SqlFilters {
    return new SqlFilters([...this.where], [...this.params]);
  }

  /** Rows after `key` in list order. The plain `not_after >=` lets the planner start the index range there. */
  after(key: { notAfter: Date; serial: string }, order: "asc" | "desc" = "asc"): SqlFilters {
    const next = this.copy();
    const at = next.param(key.notAfter);
    const [bound, beyond] = order === "desc" ? ["<=", "<"] : [">=", ">"];
    next.where.push(`not_after ${bound} ${at}`, `(not_after, serial) ${beyond} (${at}, ${next.param(key.serial)})`);
    return next;
  }
}

/** The list's filters except the text, as the Prisma query had them. */
function listFilters(query: CertificateQuery, now: Date): SqlFilters {
  const f = new SqlFilters();
  switch (query.status) {
    case undefined:
      break;
    case "valid":
      f.where.push(`status = 'valid'`, `not_after >= ${f.param(now)}`);
      break;
    case "expired":
      f.where.push(`status = 'valid'`, `not_after < ${f.param(now)}`);
      break;
    default:
      f.where.push(`status = ${f.param(query.status)}::"CertificateStatus"`);
  }
  if (query.serialPrefix) f.where.push(...serialPrefixRange(query.serialPrefix, f.param));
  if (query.issuerId) f.where.push(`issuer_id = ${f.param(query.issuerId)}`);
  if (query.profile) f.where.push(`profile = ${f.param(query.profile)}`);
  if (query.expiresBefore) f.where.push(`not_after < ${f.param(query.expiresBefore)}`);
  if (query.expiresAfter) f.where.push(`not_after > ${f.param(query.expiresAfter)}`);
  if (query.provisionerId) f.where.push(`provisioner_id = ${f.param(query.provisionerId)}`);
  if (query.acmeAccountId) f.where.push(`serial IN (SELECT certificate_serial FROM acme_orders WHERE account_id = ${f.param(query.acmeAccountId)} AND certificate_serial IS NOT NULL)`);
  if (query.internal) {
    const marked = `(profile = ANY(${f.param(query.internal.marks.profiles)}::text[]) OR requester = ANY(${f.param(query.internal.marks.requesters)}::text[]))`;
    f.where.push(query.internal.only ? marked : `NOT ${marked}`);
  }
  return query.cursor ? f.after(decodeCursor(query.cursor), query.order) : f;
}

const HEX_DIGITS = "0123456789abcdef";

/** The digit after `d` in the order serials sort; after `9` comes `a` (not `:`), after `f` a `g`. */
const nextHexDigit = (d: string) => (d === "f" ? "g" : HEX_DIGITS[HEX_DIGITS.indexOf(d) + 1]!);

/**
 * Serials starting with `prefix`, as a range on the primary key's index (the inventory can
 * hold millions of rows, so no LIKE scan): [prefix, prefix with its last digit bumped).
 * Both bounds are digits and lowercase letters only, which linguistic collations order as
 * C does (they would skip a `:` after `9`); the LIKE then checks each row the range found.
 */
function serialPrefixRange(prefix: string, param: (value: unknown) => string): string[] {
  const hex = prefix.toLowerCase();
  if (!/^[0-9a-f]{1,40}$/.test(hex)) throw new RangeError("a serial prefix is lowercase hex");
  const upper = hex.slice(0, -1) + nextHexDigit(hex.slice(-1));
  return [`serial >= ${param(hex)}`, `serial < ${param(upper)}`, `serial LIKE ${param(`${hex}%`)}`];
}

// ---- choosing how to run a text search ----------------------------------------------
//
// The term is a LIKE pattern '%q%' over search_text (q lower-cased, its `%`, `_` and `\`
// escaped: it matches as plain text). Two ways to find the first
// page: walk the (not_after, serial) order testing each row, which is cheap when many rows
// match; or search the trigram index and sort what it finds, which is cheap when the
// trigrams searched for are rare. A sample of rows estimates both.

const SAMPLE_ROWS = 5000;
/** below this many rows any plan is fast: the planner decides alone */
const SAMPLE_MIN_TABLE = 50_000;
const SAMPLE_TTL_MS = 10 * 60_000;
// rough costs in microseconds, measured on 1M rows: one posting-list entry read by GIN,
// one row fetched and rechecked after a bitmap index scan, one row walked in list order
const COST_POSTING = 0.003;
const COST_RECHECK = 1.5;
const COST_WALKED = 2;
/** sampled texts checked per estimate, at most */
const PROBE_TEXTS = 300;

interface SearchTextSample {
  /** estimated rows in the table */
  rows: number;
  texts: string[];
  /** each sampled text's trigrams, as numbers */
  trigramSets: Array<Set<number>>;
  trigramIds: Map<string, number>;
  /** the sampled texts (ascending indexes) each trigram occurs in, by number */
  trigramTexts: number[][];
}

interface TextSearchPlan {
  /** walk at most this many rows in list order first */
  walk?: number;
  /** the LIKE pattern to search the trigram index with; undefined: leave it to the planner */
  indexPattern?: string;
}

async function takeSample(db: Queryable): Promise<SearchTextSample | undefined> {
  const [stats] = await query<{ rows: number }>(db, `SELECT reltuples::float8 AS rows FROM pg_class WHERE oid = 'certificates'::regclass`);
  const rows = stats?.rows ?? 0;
  if (rows < SAMPLE_MIN_TABLE) return undefined;
  const percent = Math.min(100, (100 * SAMPLE_ROWS) / rows);
  const texts = (await query<{ t: string }>(db, `SELECT search_text AS t FROM certificates TABLESAMPLE SYSTEM (${percent})`)).map((r) => r.t);
  if (texts.length < SAMPLE_ROWS / 10) return undefined;
  const trigramIds = new Map<string, number>();
  const trigramTexts: number[][] = [];
  const trigramSets = texts.map((text, i) => {
    const set = new Set(textTrigrams(text).map((t) => trigramIds.get(t) ?? trigramIds.set(t, trigramIds.size).size - 1));
    for (const id of set) (trigramTexts[id] ??= []).push(i);
    return set;
  });
  return { rows, texts, trigramSets, trigramIds, trigramTexts };
}

const WORD = /[\p{L}\p{N}]+/gu;

/** The trigrams pg_trgm indexes for a text: each word padded with two blanks before and one after. */
function textTrigrams(text: string): string[] {
  return [...text.matchAll(WORD)].flatMap((m) => slide(`  ${m[0]} `));
}

/**
 * The trigrams pg_trgm searches for with LIKE '%piece%' (piece without wildcards): a word
 * is padded on a side only where the piece has a non-word character next to it.
 */
function likeTrigrams(piece: string): string[] {
  return [...piece.matchAll(WORD)].flatMap((m) => slide(`${m.index > 0 ? "  " : ""}${m[0]}${m.index + m[0].length < piece.length ? " " : ""}`));
}

function slide(padded: string): string[] {
  const chars = [...padded];
  return chars.slice(2).map((_, i) => chars.slice(i, i + 3).join(""));
}

function likeRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "%") source += "[\\s\\S]*";
    else if (c === "_") source += "[\\s\\S]";
    else source += (c === "\\" && i + 1 < pattern.length ? pattern[++i]! : c).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "u");
}

/** Literal pieces of the term to search the index with: each word, bare and with the characters around it. */
function indexCandidates(pattern: string): string[] {
  const pieces = pattern.split(/[%_\\]/).filter((p) => p.length > 0);
  const candidates = new Set(pieces);
  for (const piece of pieces) {
    for (const m of piece.matchAll(WORD)) {
      const from = m.index;
      const to = m.index + m[0].length;
      for (const [a, b] of [
        [from, to],
        [from - 1, to],
        [from, to + 1],
        [from - 1, to + 1],
      ] as const)
        candidates.add(piece.slice(Math.max(a, 0), b));
    }
  }
  return [...candidates].filter((c) => likeTrigrams(c).length > 0);
}

/**
 * The sampled texts that have every trigram in `ids` (undefined: a trigram no sampled text
 * has): at most PROBE_TEXTS of the rarest trigram's texts are checked, and `scale` says how
 * many each one found stands for.
 */
function textsWithAll(sample: SearchTextSample, ids: Array<number | undefined>): { texts: number[]; scale: number } {
  if (ids.includes(undefined)) return { texts: [], scale: 1 };
  const [first, ...others] = (ids as number[]).sort((a, b) => sample.trigramTexts[a]!.length - sample.trigramTexts[b]!.length);
  const rarest = sample.trigramTexts[first!]!;
  const step = Math.max(1, rarest.length / PROBE_TEXTS);
  const probe = Array.from({ length: Math.min(rarest.length, PROBE_TEXTS) }, (_, i) => rarest[Math.floor(i * step)]!);
  return { texts: probe.filter((t) => others.every((id) => sample.trigramSets[t]!.has(id))), scale: rarest.length / Math.max(probe.length, 1) };
}

function textSearchPlan(sample: SearchTextSample | undefined, pattern: string, n: number): TextSearchPlan {
  if (!sample) return {};
  const size = sample.texts.length;
  const share = (count: number) => Math.max(count, 0.5) / size; // not in the sample: rarer than one in `size`
  const candidates = indexCandidates(pattern).map((piece) => {
    const ids = [...new Set(likeTrigrams(piece))].map((t) => sample.trigramIds.get(t));
    const postings = ids.reduce((sum: number, id) => sum + share(id === undefined ? 0 : sample.trigramTexts[id]!.length), 0);
    return { piece, ids, postingsCost: sample.rows * postings * COST_POSTING };
  });
  let index: { pattern: string; cost: number; texts: number[]; scale: number } | undefined;
  for (const { piece, ids, postingsCost } of candidates.sort((a, b) => a.postingsCost - b.postingsCost)) {
    if (index && postingsCost >= index.cost) break;
    // the index returns every row with all the piece's trigrams, each fetched and rechecked
    const found = textsWithAll(sample, ids);
    const cost = postingsCost + sample.rows * share(found.texts.length * found.scale) * COST_RECHECK;
    if (!index || cost < index.cost) index = { pattern: `%${piece}%`, cost, ...found };
  }
  if (!index) return {};
  // every match has the chosen piece's trigrams, so only those texts need the full test
  const like = likeRegExp(pattern);
  const matching = index.texts.filter((t) => like.test(sample.texts[t]!)).length;
  const walked = matching >= 3 ? (n * size) / (matching * index.scale) : Infinity;
  if (walked * COST_WALKED >= index.cost) return { indexPattern: index.pattern };
  // Walk while that costs less than the index would: never much worse than the better
  // of the two when the sample misjudges where in the order the matches are.
  return { walk: Math.ceil(Math.max(4 * walked, index.cost / COST_WALKED)), indexPattern: index.pattern };
}

async function insertIntents(db: Queryable, items: PlannedCertificate[]): Promise<Array<"issuer_not_active" | undefined>> {
  const column = <T>(f: (p: PlannedCertificate) => T) => items.map(f);
  const inserted = await query<{ serial: string }>(
    db,
    `INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki,
       not_before, not_after, tbs_der, requester, provisioner_id, auto_renew, predecessor_serial)
     SELECT s, i, 'pending', p, sub, ARRAY(SELECT jsonb_array_elements_text(sa)), st, ka, pk, nb, na, tbs, rq, pv, ar, ps
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::bytea[],
                 $9::timestamptz[], $10::timestamptz[], $11::bytea[], $12::text[], $13::text[], $14::bool[], $15::text[], $16::bool[])
       AS t(s, i, p, sub, sa, st, ka, pk, nb, na, tbs, rq, pv, ar, ps, oa)
     JOIN issuers ON issuers.id = t.i
     WHERE NOT t.oa OR (issuers.status = 'active' AND issuers.revoked_at IS NULL)
     RETURNING serial`,
    [
      column((p) => p.serial),
      column((p) => p.issuerId),
      column((p) => p.profile),
      column((p) => p.subject),
      column((p) => JSON.stringify(p.sans)),
      column((p) => [p.subject, ...p.sans].join(" ").toLowerCase()),
      column((p) => p.keyAlgorithm),
      column((p) => p.publicKeySpki),
      column((p) => p.notBefore),
      column((p) => p.notAfter),
      column((p) => p.tbsDer),
      column((p) => p.requester),
      column((p) => p.provisionerId ?? null),
      column((p) => p.autoRenew ?? false),
      column((p) => p.predecessorSerial ?? null),
      column((p) => p.onlyFromActiveIssuer),
    ],
  );
  const recorded = new Set(inserted.map((row) => row.serial));
  return items.map((item) => (recorded.has(item.serial) ? undefined : "issuer_not_active"));
}

async function storeIssued(db: Queryable, items: Array<{ serial: string; der: Buffer; audit: AuditEntry }>): Promise<Array<string | undefined>> {
  const rows = await query<{ serial: string }>(
    db,
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
         AS t(serial, der, actor, action, target, source_ip, details)
     ), done AS (
       UPDATE certificates c SET status = 'valid', der = input.der, issued_at = now()
       FROM input WHERE c.serial = input.serial AND c.status = 'pending'
         -- a renewal is released only while its predecessor stands; the share lock waits
         -- for a keyCompromise revocation of the family in progress (revokeWithSuccessors)
         AND (c.predecessor_serial IS NULL OR EXISTS (SELECT 1 FROM certificates p WHERE p.serial = c.predecessor_serial AND p.status <> 'revoked' FOR SHARE))
       RETURNING c.serial, c.predecessor_serial
     ), linked AS (
       UPDATE certificates p SET successor_serial = done.serial FROM done WHERE p.serial = done.predecessor_serial
     ), audited AS (
       ${INSERT_AUDIT_EVENTS}
       SELECT input.actor, input.action, input.target, input.source_ip, 'ok', input.details FROM input JOIN done USING (serial)
     )
     SELECT serial FROM done`,
    [
      items.map((i) => i.serial),
      items.map((i) => i.der),
      items.map((i) => i.audit.actor),
      items.map((i) => i.audit.action),
      items.map((i) => i.audit.target ?? null),
      items.map((i) => i.audit.sourceIp ?? null),
      items.map((i) => (i.audit.details ? JSON.stringify(i.audit.details) : null)),
    ],
  );
  const stored = new Set(rows.map((r) => r.serial));
  // Not pending any more (reconciled as failed, or stored twice), or renewing a certificate
  // revoked meanwhile: refused, never overwritten or released.
  return items.map((i) => (stored.has(i.serial) ? undefined : `certificate ${i.serial} is not pending, or the certificate it renews was revoked; refusing to store it`));
}
