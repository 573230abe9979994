import type { Certificate, PrismaClient } from "../generated/prisma/client.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { AuditStore, type AuditEntry } from "./audit.ts";
import { Batcher } from "../batcher.ts";
import type { SqlRunner } from "../connection.ts";

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
}

/** Status as users see it: "expired" is a valid certificate past its notAfter. */
export type CertificateState = "pending" | "valid" | "revoked" | "failed" | "expired";

export interface CertificateQuery {
  status?: CertificateState;
  issuerId?: string;
  profile?: string;
  /** text in the subject or a SAN, case-insensitive */
  q?: string;
  expiresBefore?: Date;
  expiresAfter?: Date;
  limit?: number;
  /** opaque, from a previous page's nextCursor */
  cursor?: string;
}

export class DuplicateSerialError extends Error {
  constructor(serial: string) {
    super(`serial ${serial} already exists in the inventory`);
  }
}

const toRecord = (row: Certificate): CertificateRecord => ({
  ...row,
  publicKeySpki: Buffer.from(row.publicKeySpki),
  tbsDer: Buffer.from(row.tbsDer),
  der: row.der ? Buffer.from(row.der) : null,
});

function encodeCursor(row: { notAfter: Date; serial: string }): string {
  return Buffer.from(`${row.notAfter.getTime()}:${row.serial}`).toString("base64url");
}

function decodeCursor(cursor: string): { notAfter: Date; serial: string } {
  const [time, serial] = Buffer.from(cursor, "base64url").toString().split(":");
  const ms = Number(time);
  if (!serial || !/^[0-9a-f]+$/.test(serial) || !Number.isFinite(ms)) throw new RangeError("cursor is not one this API returned");
  return { notAfter: new Date(ms), serial };
}

export class CertificateStore {
  private readonly audit: AuditStore;
  private readonly intents: Batcher<PlannedCertificate, void>;
  /** per item: undefined when stored, else why not */
  private readonly issued: Batcher<{ serial: string; der: Buffer; audit: AuditEntry }, string | undefined>;

  // The two writes of every issuance go through raw SQL with group commit: with Prisma
  // (one create, then an interactive transaction of four statements) the database work
  // was the largest cost of an issuance. Each batch is one statement, so it is atomic.
  constructor(
    private readonly prisma: PrismaClient,
    private readonly sql: SqlRunner,
  ) {
    this.audit = new AuditStore(prisma);
    this.intents = new Batcher((items) => insertIntents(sql, items));
    this.issued = new Batcher((items) => storeIssued(sql, items));
  }

  /** Stores the planned certificate as `pending`. The primary key makes serials unique. */
  async recordIntent(planned: PlannedCertificate): Promise<void> {
    try {
      await this.intents.submit(planned);
    } catch (error) {
      if ((error as { code?: string }).code === "23505") throw new DuplicateSerialError(planned.serial);
      throw error;
    }
  }

  /**
   * The signed certificate replaces the intent, the predecessor (on renewal) learns its
   * successor, and the audit event is written: one statement, so all or nothing.
   */
  async markIssued(serial: string, der: Buffer, audit: AuditEntry): Promise<void> {
    const refused = await this.issued.submit({ serial, der, audit });
    if (refused) throw new Error(refused);
  }

  /** The token refused or failed: the intent stays, marked failed, for the record. */
  async markFailed(serial: string, audit: AuditEntry): Promise<void> {
    await this.prisma.certificate.updateMany({ where: { serial, status: "pending" }, data: { status: "failed" } });
    await this.audit.record({ ...audit, outcome: "error" });
  }

  /**
   * valid → revoked, with its audit event, in one transaction. Returns the row as it is
   * afterwards, or the reason nothing changed.
   */
  async revoke(serial: string, reason: number, at: Date, audit: AuditEntry): Promise<{ revoked: CertificateRecord } | { refused: "not_found" | "already_revoked" | "not_issued" }> {
    // One statement, so it is atomic without an interactive transaction (whose 5 s
    // timeout failed revocations under heavy load in the soak test).
    const [result] = await this.sql.query<{ before: string | null; revoked: boolean }>(
      `WITH target AS (SELECT status FROM certificates WHERE serial = $1),
       done AS (
         UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3
         WHERE serial = $1 AND status = 'valid' RETURNING serial
       ), audited AS (
         INSERT INTO audit_events (actor, action, target, source_ip, outcome, details)
         SELECT $4, $5, $6, $7, 'ok', $8::jsonb FROM done
       )
       SELECT (SELECT status::text FROM target) AS before, EXISTS (SELECT 1 FROM done) AS revoked`,
      [serial, at, reason, audit.actor, audit.action, audit.target ?? null, audit.sourceIp ?? null, audit.details ? JSON.stringify(audit.details) : null],
    );
    if (!result?.revoked) {
      if (!result?.before) return { refused: "not_found" };
      return { refused: result.before === "revoked" ? "already_revoked" : "not_issued" };
    }
    return { revoked: (await this.get(serial))! };
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.prisma.certificate.findUnique({ where: { serial } });
    return row ? toRecord(row) : undefined;
  }

  /** Certificate counts by the state users see (expired = valid past notAfter). */
  async countsByState(now: Date): Promise<Record<CertificateState, number>> {
    const rows = await this.prisma.$queryRaw<Array<{ state: CertificateState; n: bigint }>>`
      SELECT CASE WHEN status = 'valid' AND not_after < ${now} THEN 'expired' ELSE status::text END AS state, count(*) AS n
      FROM certificates GROUP BY 1`;
    const counts: Record<CertificateState, number> = { pending: 0, valid: 0, revoked: 0, failed: 0, expired: 0 };
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  /** Valid certificates expiring on each UTC day from `now` for `days` days (index-backed range scan). */
  async expiryByDay(now: Date, days: number): Promise<Array<{ day: string; count: number }>> {
    const until = new Date(now.getTime() + days * 86_400_000);
    const rows = await this.prisma.$queryRaw<Array<{ day: string; n: bigint }>>`
      SELECT to_char(date_trunc('day', not_after AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, count(*) AS n
      FROM certificates WHERE status = 'valid' AND not_after >= ${now} AND not_after < ${until}
      GROUP BY 1 ORDER BY 1`;
    return rows.map((r) => ({ day: r.day, count: Number(r.n) }));
  }

  /** Pending intents older than `before`: what a crash between record and store left behind. */
  async pendingBefore(before: Date): Promise<CertificateRecord[]> {
    const rows = await this.prisma.certificate.findMany({ where: { status: "pending", createdAt: { lt: before } }, take: 1000 });
    return rows.map(toRecord);
  }

  /** Keyset pagination on (notAfter, serial): stable under inserts and index-backed. */
  async list(query: CertificateQuery, now = new Date()): Promise<{ items: CertificateRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const where: Prisma.CertificateWhereInput = {};
    const and: Prisma.CertificateWhereInput[] = [];
    switch (query.status) {
      case undefined:
        break;
      case "valid":
        and.push({ status: "valid", notAfter: { gte: now } });
        break;
      case "expired":
        and.push({ status: "valid", notAfter: { lt: now } });
        break;
      default:
        and.push({ status: query.status });
    }
    if (query.issuerId) and.push({ issuerId: query.issuerId });
    if (query.profile) and.push({ profile: query.profile });
    if (query.q) and.push({ searchText: { contains: query.q.toLowerCase() } });
    if (query.expiresBefore) and.push({ notAfter: { lt: query.expiresBefore } });
    if (query.expiresAfter) and.push({ notAfter: { gt: query.expiresAfter } });
    if (query.cursor) {
      const c = decodeCursor(query.cursor);
      // The plain `notAfter >= cursor` lets the planner start the index range at the cursor
      // instead of filtering every earlier row (a deep page at 1M rows: 35 ms → ~3 ms).
      and.push({ notAfter: { gte: c.notAfter } }, { OR: [{ notAfter: { gt: c.notAfter } }, { notAfter: c.notAfter, serial: { gt: c.serial } }] });
    }
    if (and.length) where.AND = and;
    const rows = await this.prisma.certificate.findMany({ where, orderBy: [{ notAfter: "asc" }, { serial: "asc" }], take: limit + 1 });
    const items = rows.slice(0, limit).map(toRecord);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }
}

async function insertIntents(sql: SqlRunner, items: PlannedCertificate[]): Promise<void[]> {
  const column = <T>(f: (p: PlannedCertificate) => T) => items.map(f);
  await sql.query(
    `INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki,
       not_before, not_after, tbs_der, requester, provisioner_id, auto_renew, predecessor_serial)
     SELECT s, i, 'pending', p, sub, ARRAY(SELECT jsonb_array_elements_text(sa)), st, ka, pk, nb, na, tbs, rq, pv, ar, ps
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::bytea[],
                 $9::timestamptz[], $10::timestamptz[], $11::bytea[], $12::text[], $13::text[], $14::bool[], $15::text[])
       AS t(s, i, p, sub, sa, st, ka, pk, nb, na, tbs, rq, pv, ar, ps)`,
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
    ],
  );
  return items.map(() => undefined);
}

async function storeIssued(sql: SqlRunner, items: Array<{ serial: string; der: Buffer; audit: AuditEntry }>): Promise<Array<string | undefined>> {
  const rows = await sql.query<{ serial: string }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
         AS t(serial, der, actor, action, target, source_ip, details)
     ), done AS (
       UPDATE certificates c SET status = 'valid', der = input.der, issued_at = now()
       FROM input WHERE c.serial = input.serial AND c.status = 'pending'
       RETURNING c.serial, c.predecessor_serial
     ), linked AS (
       UPDATE certificates p SET successor_serial = done.serial FROM done WHERE p.serial = done.predecessor_serial
     ), audited AS (
       INSERT INTO audit_events (actor, action, target, source_ip, outcome, details)
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
  // Not pending any more (reconciled as failed, or stored twice): refused, never overwritten.
  return items.map((i) => (stored.has(i.serial) ? undefined : `certificate ${i.serial} is not pending; refusing to overwrite it`));
}
