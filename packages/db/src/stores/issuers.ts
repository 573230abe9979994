import type pg from "pg";
import type { Issuer } from "../generated/prisma/client.ts";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
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

// Column names as the Issuer model spells them, so rows read with plain SQL are IssuerRecords.
export const ISSUER_COLUMNS = `id, hierarchy, role, status, parent_id AS "parentId", subject, serial, key_uri AS "keyUri", key_algorithm AS "keyAlgorithm",
  not_before AS "notBefore", not_after AS "notAfter", certificate_der AS "certificateDer", activated_at AS "activatedAt", retired_at AS "retiredAt",
  revoked_at AS "revokedAt", revocation_reason AS "revocationReason", activate_at AS "activateAt", created_at AS "createdAt"`;

/**
 * The issuers of every hierarchy: roots and intermediates, whatever their status. Every
 * process reads them at start-up and again every few seconds (keyring reload).
 */
export class IssuerStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Records the plan, with its audit event, before anything is signed. */
  async recordIntent(intent: IssuerIntent, audit: AuditEntry): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await execute(client, `INSERT INTO issuer_intents (id, hierarchy, role, parent_id, serial, key_uri, tbs_der) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
        intent.id,
        intent.hierarchy,
        intent.role,
        intent.parentId,
        intent.serial,
        intent.keyUri,
        intent.tbsDer,
      ]);
      await new AuditStore(client).record(audit);
    });
  }

  /** The signed CA certificate: the issuer row, its intent marked issued and the audit event, in one transaction. */
  async create(issuer: NewIssuer, audit: AuditEntry): Promise<IssuerRecord> {
    return inTransaction(this.pool, async (client) => {
      const row = await queryOne<IssuerRecord>(
        client,
        `INSERT INTO issuers (id, hierarchy, role, status, parent_id, subject, serial, key_uri, key_algorithm, not_before, not_after, certificate_der,
           activated_at, retired_at, revoked_at, revocation_reason, activate_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING ${ISSUER_COLUMNS}`,
        [
          issuer.id,
          issuer.hierarchy,
          issuer.role,
          issuer.status,
          issuer.parentId,
          issuer.subject,
          issuer.serial,
          issuer.keyUri,
          issuer.keyAlgorithm,
          issuer.notBefore,
          issuer.notAfter,
          issuer.certificateDer,
          issuer.activatedAt ?? null,
          issuer.retiredAt ?? null,
          issuer.revokedAt ?? null,
          issuer.revocationReason ?? null,
          issuer.activateAt ?? null,
        ],
      );
      await execute(client, `UPDATE issuer_intents SET status = 'issued' WHERE id = $1 AND status = 'pending'`, [issuer.id]);
      await new AuditStore(client).record(audit);
      return row!;
    });
  }

  /** A planned CA certificate that was never signed (token failure) or never stored (crash). */
  async markIntentFailed(id: string, audit: AuditEntry): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      const failed = await execute(client, `UPDATE issuer_intents SET status = 'failed' WHERE id = $1 AND status = 'pending'`, [id]);
      if (failed) await new AuditStore(client).record({ ...audit, outcome: "error" });
    });
  }

  async pendingIntentsBefore(cutoff: Date): Promise<{ id: string; createdAt: Date }[]> {
    return query<{ id: string; createdAt: Date }>(this.pool, `SELECT id, created_at AS "createdAt" FROM issuer_intents WHERE status = 'pending' AND created_at < $1 LIMIT 1000`, [cutoff]);
  }

  async get(id: string): Promise<IssuerRecord | undefined> {
    return queryOne<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE id = $1`, [id]);
  }

  async list(): Promise<IssuerRecord[]> {
    // role and status are enums: they sort in declaration order, as Prisma sorts them
    return query<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers ORDER BY hierarchy, role, not_before`);
  }

  async active(hierarchy: string, role: IssuerRecord["role"]): Promise<IssuerRecord | undefined> {
    return queryOne<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE hierarchy = $1 AND role = $2 AND status = 'active' ORDER BY activated_at DESC NULLS LAST LIMIT 1`, [
      hierarchy,
      role,
    ]);
  }
}
