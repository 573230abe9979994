import type { Certificate, PrismaClient } from "../generated/prisma/client.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { AuditStore, type AuditEntry } from "./audit.ts";

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
  constructor(private readonly prisma: PrismaClient) {
    this.audit = new AuditStore(prisma);
  }

  /** Stores the planned certificate as `pending`. The primary key makes serials unique. */
  async recordIntent(planned: PlannedCertificate): Promise<void> {
    try {
      await this.prisma.certificate.create({
        data: {
          serial: planned.serial,
          issuerId: planned.issuerId,
          status: "pending",
          profile: planned.profile,
          subject: planned.subject,
          sans: planned.sans,
          searchText: [planned.subject, ...planned.sans].join(" ").toLowerCase(),
          keyAlgorithm: planned.keyAlgorithm,
          publicKeySpki: new Uint8Array(planned.publicKeySpki),
          notBefore: planned.notBefore,
          notAfter: planned.notAfter,
          tbsDer: new Uint8Array(planned.tbsDer),
          requester: planned.requester,
          provisionerId: planned.provisionerId ?? null,
          autoRenew: planned.autoRenew ?? false,
          predecessorSerial: planned.predecessorSerial ?? null,
        },
      });
    } catch (error) {
      if ((error as { code?: string }).code === "P2002") throw new DuplicateSerialError(planned.serial);
      throw error;
    }
  }

  /** The signed certificate replaces the intent; its audit event commits with it. */
  async markIssued(serial: string, der: Buffer, audit: AuditEntry): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const updated = await tx.certificate.updateMany({ where: { serial, status: "pending" }, data: { status: "valid", der: new Uint8Array(der), issuedAt: new Date() } });
      if (updated.count !== 1) throw new Error(`certificate ${serial} is not pending; refusing to overwrite it`);
      const predecessor = (await tx.certificate.findUnique({ where: { serial }, select: { predecessorSerial: true } }))?.predecessorSerial;
      if (predecessor) await tx.certificate.update({ where: { serial: predecessor }, data: { successorSerial: serial } });
      await new AuditStore(tx).record(audit);
    });
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
    return this.prisma.$transaction(async (tx) => {
      const updated = await tx.certificate.updateMany({ where: { serial, status: "valid" }, data: { status: "revoked", revokedAt: at, revocationReason: reason } });
      const row = await tx.certificate.findUnique({ where: { serial } });
      if (updated.count === 0) {
        if (!row) return { refused: "not_found" as const };
        return { refused: row.status === "revoked" ? ("already_revoked" as const) : ("not_issued" as const) };
      }
      await new AuditStore(tx).record(audit);
      return { revoked: toRecord(row!) };
    });
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
      and.push({ OR: [{ notAfter: { gt: c.notAfter } }, { notAfter: c.notAfter, serial: { gt: c.serial } }] });
    }
    if (and.length) where.AND = and;
    const rows = await this.prisma.certificate.findMany({ where, orderBy: [{ notAfter: "asc" }, { serial: "asc" }], take: limit + 1 });
    const items = rows.slice(0, limit).map(toRecord);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }
}
