import type pg from "pg";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { Issuer } from "../generated/prisma/client.ts";
import { AuditStore, type AuditEntry } from "./audit.ts";

export type IssuerRecord = Omit<Issuer, "certificateDer" | "createdAt"> & { certificateDer: Buffer; createdAt?: Date };
export type IssuerStatus = IssuerRecord["status"];

/** A CA certificate as planned, before its signature: the exact bytes the key will sign. */
export interface IssuerIntent {
  id: string;
  hierarchy: string;
  role: IssuerRecord["role"];
  parentId: string | null;
  serial: string;
  keyUri: string;
  tbsDer: Buffer;
}

type NewIssuer = Omit<IssuerRecord, "createdAt" | "activatedAt" | "retiredAt" | "revokedAt" | "revocationReason" | "activateAt"> & Partial<IssuerRecord>;

const toRecord = (row: Issuer): IssuerRecord => ({ ...row, certificateDer: Buffer.from(row.certificateDer) });

// Column names as the Issuer model spells them, so rows read with plain SQL are IssuerRecords.
const COLUMNS = `id, hierarchy, role, status, parent_id AS "parentId", subject, serial, key_uri AS "keyUri", key_algorithm AS "keyAlgorithm",
  not_before AS "notBefore", not_after AS "notAfter", certificate_der AS "certificateDer", activated_at AS "activatedAt", retired_at AS "retiredAt",
  revoked_at AS "revokedAt", revocation_reason AS "revocationReason", activate_at AS "activateAt", created_at AS "createdAt"`;

/**
 * The issuers of every hierarchy: roots and intermediates, whatever their status.
 *
 * Reads are plain SQL: every process reads the issuers at start-up and again every few
 * seconds (keyring reload), and a process that only publishes CRLs or answers OCSP then
 * never starts Prisma's query engine, which costs about 80 MB of memory on first use.
 */
export class IssuerStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: pg.Pool,
  ) {}

  /** Records the plan, with its audit event, before anything is signed. */
  async recordIntent(intent: IssuerIntent, audit: AuditEntry): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      await tx.issuerIntent.create({ data: { ...intent, tbsDer: new Uint8Array(intent.tbsDer) } });
      await new AuditStore(tx).record(audit);
    });
  }

  /** The signed CA certificate: the issuer row, its intent marked issued and the audit event, in one transaction. */
  async create(issuer: NewIssuer, audit: AuditEntry): Promise<IssuerRecord> {
    const { createdAt: _ignored, ...data } = issuer;
    return this.prisma.$transaction(async (tx) => {
      const row = await tx.issuer.create({ data: { ...data, certificateDer: new Uint8Array(issuer.certificateDer) } });
      await tx.issuerIntent.updateMany({ where: { id: issuer.id, status: "pending" }, data: { status: "issued" } });
      await new AuditStore(tx).record(audit);
      return toRecord(row);
    });
  }

  /** A planned CA certificate that was never signed (token failure) or never stored (crash). */
  async markIntentFailed(id: string, audit: AuditEntry): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.issuerIntent.updateMany({ where: { id, status: "pending" }, data: { status: "failed" } });
      if (count) await new AuditStore(tx).record({ ...audit, outcome: "error" });
    });
  }

  async pendingIntentsBefore(cutoff: Date): Promise<{ id: string; createdAt: Date }[]> {
    return this.prisma.issuerIntent.findMany({ where: { status: "pending", createdAt: { lt: cutoff } }, select: { id: true, createdAt: true }, take: 1000 });
  }

  async get(id: string): Promise<IssuerRecord | undefined> {
    const rows = await this.pool.query<IssuerRecord>(`SELECT ${COLUMNS} FROM issuers WHERE id = $1`, [id]);
    return rows.rows[0];
  }

  async list(): Promise<IssuerRecord[]> {
    // role and status are enums: they sort in declaration order, as Prisma sorts them
    const rows = await this.pool.query<IssuerRecord>(`SELECT ${COLUMNS} FROM issuers ORDER BY hierarchy, role, not_before`);
    return rows.rows;
  }

  async active(hierarchy: string, role: IssuerRecord["role"]): Promise<IssuerRecord | undefined> {
    const rows = await this.pool.query<IssuerRecord>(`SELECT ${COLUMNS} FROM issuers WHERE hierarchy = $1 AND role = $2 AND status = 'active' ORDER BY activated_at DESC NULLS LAST LIMIT 1`, [
      hierarchy,
      role,
    ]);
    return rows.rows[0];
  }
}
