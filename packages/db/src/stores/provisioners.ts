import { randomUUID, timingSafeEqual } from "node:crypto";
import type pg from "pg";
import type { Provisioner } from "../generated/prisma/client.ts";
import { execute, query, queryOne, type Queryable } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
import { AuditStore, type AuditEntry } from "./audit.ts";
import { hashToken } from "./admins.ts";

/** A provisioner as the API and CLI see it; never the token, only whether it still works. */
export interface ProvisionerRecord {
  id: string;
  name: string;
  profiles: string[];
  names: string[];
  maxTtlSeconds: number;
  hierarchy: string;
  disabled: boolean;
  createdAt: Date;
  deletedAt: Date | null;
}

export interface NewProvisioner {
  name: string;
  profiles: string[];
  names: string[];
  maxTtlSeconds: number;
  hierarchy?: string;
}

export class ProvisionerNameTakenError extends Error {
  constructor(
    name: string,
    readonly removed: boolean,
  ) {
    super(removed ? `a provisioner named '${name}' existed and was removed; names are not reused so the audit log stays unambiguous, choose another` : `a provisioner named '${name}' already exists`);
  }
}

/** Every column but the token hash, named as ProvisionerRecord names them. */
export const PROVISIONER_COLUMNS = `id, name, profiles, names, max_ttl_seconds AS "maxTtlSeconds", hierarchy, disabled, created_at AS "createdAt", deleted_at AS "deletedAt"`;

/** The provisioner of that name, removed or not. */
const byName = (db: Queryable, name: string) => queryOne<ProvisionerRecord>(db, `SELECT ${PROVISIONER_COLUMNS} FROM provisioners WHERE name = $1`, [name]);

/**
 * Provisioners: credentials that may enrol certificates within a policy. Only the SHA-256
 * of each token is kept. Removal is a tombstone (deletedAt) so certificates and audit
 * events keep pointing at a provisioner that can be looked up.
 */
export class ProvisionerStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Creates it and its audit event in one transaction. */
  async create(provisioner: NewProvisioner, token: string, audit: AuditEntry): Promise<ProvisionerRecord> {
    return inTransaction(this.pool, async (client) => {
      const existing = await byName(client, provisioner.name);
      if (existing) throw new ProvisionerNameTakenError(provisioner.name, existing.deletedAt !== null);
      let row: ProvisionerRecord;
      try {
        row = (await queryOne<ProvisionerRecord>(
          client,
          `INSERT INTO provisioners (id, name, token_hash, profiles, names, max_ttl_seconds, hierarchy) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PROVISIONER_COLUMNS}`,
          [randomUUID(), provisioner.name, hashToken(token), provisioner.profiles, provisioner.names, provisioner.maxTtlSeconds, provisioner.hierarchy ?? "default"],
        ))!;
      } catch (error) {
        // two admins creating the same name at once: the unique index decides
        if ((error as { code?: string }).code === "23505") throw new ProvisionerNameTakenError(provisioner.name, false);
        throw error;
      }
      await new AuditStore(client).record({
        ...audit,
        target: `provisioner:${row.name}`,
        details: { ...audit.details, id: row.id, profiles: row.profiles, names: row.names, maxTtlSeconds: row.maxTtlSeconds },
      });
      return row;
    });
  }

  /**
   * The live (not disabled, not removed) provisioner holding this token. The lookup is by
   * hash through a unique index, so its timing says nothing about the token; the hashes
   * are compared again in constant time in case the index ever returns a near match.
   */
  async verify(token: string): Promise<ProvisionerRecord | undefined> {
    const hash = hashToken(token);
    const row = await queryOne<Provisioner>(this.pool, `SELECT ${PROVISIONER_COLUMNS}, token_hash AS "tokenHash" FROM provisioners WHERE token_hash = $1`, [hash]);
    if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, "hex"), Buffer.from(hash, "hex"))) return undefined;
    if (row.disabled || row.deletedAt) return undefined;
    const { tokenHash: _secret, ...record } = row;
    return record;
  }

  async get(id: string): Promise<ProvisionerRecord | undefined> {
    return queryOne<ProvisionerRecord>(this.pool, `SELECT ${PROVISIONER_COLUMNS} FROM provisioners WHERE id = $1`, [id]);
  }

  async byName(name: string): Promise<ProvisionerRecord | undefined> {
    return byName(this.pool, name);
  }

  async list(options: { includeRemoved?: boolean } = {}): Promise<ProvisionerRecord[]> {
    return query<ProvisionerRecord>(this.pool, `SELECT ${PROVISIONER_COLUMNS} FROM provisioners ${options.includeRemoved ? "" : "WHERE deleted_at IS NULL"} ORDER BY name`);
  }

  /** Disables or re-enables a live provisioner; undefined when there is none by that name. */
  async setDisabled(name: string, disabled: boolean, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.updateLive(name, { disabled }, { ...audit, details: { ...audit.details, disabled } });
  }

  /** Changes a live provisioner's scope and/or state; undefined when there is none by that name. */
  async update(name: string, changes: Partial<Pick<ProvisionerRecord, "profiles" | "names" | "maxTtlSeconds" | "disabled">>, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.updateLive(name, changes, { ...audit, details: { ...audit.details, ...changes } });
  }

  /** Tombstones a live provisioner; its token stops working with this commit. */
  async remove(name: string, at: Date, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.updateLive(name, { deletedAt: at }, audit);
  }

  /** Applies `changes` to the live provisioner `name` with its audit event, in one transaction; undefined when there is none. */
  private async updateLive(
    name: string,
    changes: Partial<Pick<ProvisionerRecord, "profiles" | "names" | "maxTtlSeconds" | "disabled" | "deletedAt">>,
    audit: AuditEntry,
  ): Promise<ProvisionerRecord | undefined> {
    const columns = { profiles: "profiles", names: "names", maxTtlSeconds: "max_ttl_seconds", disabled: "disabled", deletedAt: "deleted_at" } as const;
    const params: unknown[] = [name];
    const set = Object.entries(changes)
      .filter(([, value]) => value !== undefined)
      .map(([field, value]) => `${columns[field as keyof typeof columns]} = $${params.push(value)}`);
    return inTransaction(this.pool, async (client) => {
      // Nothing to change still finds (and audits) the live provisioner, as an empty update would.
      const matched = set.length
        ? await execute(client, `UPDATE provisioners SET ${set.join(", ")} WHERE name = $1 AND deleted_at IS NULL`, params)
        : await execute(client, `SELECT 1 FROM provisioners WHERE name = $1 AND deleted_at IS NULL`, [name]);
      if (matched === 0) return undefined;
      await new AuditStore(client).record({ ...audit, target: `provisioner:${name}` });
      return byName(client, name);
    });
  }
}
