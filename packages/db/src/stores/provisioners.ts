import { randomUUID, timingSafeEqual } from "node:crypto";
import type pg from "pg";
import type { PrismaClient, Provisioner } from "../generated/prisma/client.ts";
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

const toRecord = ({ tokenHash: _secret, ...row }: Provisioner): ProvisionerRecord => row;

/**
 * Provisioners: credentials that may enrol certificates within a policy. Only the SHA-256
 * of each token is kept. Removal is a tombstone (deletedAt) so certificates and audit
 * events keep pointing at a provisioner that can be looked up.
 */
export class ProvisionerStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: pg.Pool,
  ) {}

  /** Creates it and its audit event in one transaction. */
  async create(provisioner: NewProvisioner, token: string, audit: AuditEntry): Promise<ProvisionerRecord> {
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.provisioner.findUnique({ where: { name: provisioner.name } });
      if (existing) throw new ProvisionerNameTakenError(provisioner.name, existing.deletedAt !== null);
      let row: Provisioner;
      try {
        row = await tx.provisioner.create({
          data: {
            id: randomUUID(),
            name: provisioner.name,
            tokenHash: hashToken(token),
            profiles: provisioner.profiles,
            names: provisioner.names,
            maxTtlSeconds: provisioner.maxTtlSeconds,
            hierarchy: provisioner.hierarchy ?? "default",
          },
        });
      } catch (error) {
        // two admins creating the same name at once: the unique index decides
        if ((error as { code?: string }).code === "P2002") throw new ProvisionerNameTakenError(provisioner.name, false);
        throw error;
      }
      await new AuditStore(tx).record({
        ...audit,
        target: `provisioner:${row.name}`,
        details: { ...audit.details, id: row.id, profiles: row.profiles, names: row.names, maxTtlSeconds: row.maxTtlSeconds },
      });
      return toRecord(row);
    });
  }

  /**
   * The live (not disabled, not removed) provisioner holding this token. The lookup is by
   * hash through a unique index, so its timing says nothing about the token; the hashes
   * are compared again in constant time in case the index ever returns a near match.
   */
  async verify(token: string): Promise<ProvisionerRecord | undefined> {
    const hash = hashToken(token);
    // Plain SQL: this runs on every enrolment, and Prisma's query path costs more than the lookup.
    const rows = await this.pool.query<Provisioner>(
      `SELECT id, name, token_hash AS "tokenHash", profiles, names, max_ttl_seconds AS "maxTtlSeconds", hierarchy, disabled, created_at AS "createdAt", deleted_at AS "deletedAt"
       FROM provisioners WHERE token_hash = $1`,
      [hash],
    );
    const row = rows.rows[0];
    if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, "hex"), Buffer.from(hash, "hex"))) return undefined;
    if (row.disabled || row.deletedAt) return undefined;
    return toRecord(row);
  }

  async get(id: string): Promise<ProvisionerRecord | undefined> {
    const row = await this.prisma.provisioner.findUnique({ where: { id } });
    return row ? toRecord(row) : undefined;
  }

  async byName(name: string): Promise<ProvisionerRecord | undefined> {
    const row = await this.prisma.provisioner.findUnique({ where: { name } });
    return row ? toRecord(row) : undefined;
  }

  async list(options: { includeRemoved?: boolean } = {}): Promise<ProvisionerRecord[]> {
    const rows = await this.prisma.provisioner.findMany({ where: options.includeRemoved ? {} : { deletedAt: null }, orderBy: { name: "asc" } });
    return rows.map(toRecord);
  }

  /** Disables or re-enables a live provisioner; undefined when there is none by that name. */
  async setDisabled(name: string, disabled: boolean, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const updated = await tx.provisioner.updateMany({ where: { name, deletedAt: null }, data: { disabled } });
      if (updated.count === 0) return undefined;
      await new AuditStore(tx).record({ ...audit, target: `provisioner:${name}`, details: { ...audit.details, disabled } });
      const row = await tx.provisioner.findUnique({ where: { name } });
      return row ? toRecord(row) : undefined;
    });
  }

  /** Changes a live provisioner's scope and/or state; undefined when there is none by that name. */
  async update(name: string, changes: Partial<Pick<ProvisionerRecord, "profiles" | "names" | "maxTtlSeconds" | "disabled">>, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const updated = await tx.provisioner.updateMany({ where: { name, deletedAt: null }, data: changes });
      if (updated.count === 0) return undefined;
      await new AuditStore(tx).record({ ...audit, target: `provisioner:${name}`, details: { ...audit.details, ...changes } });
      const row = await tx.provisioner.findUnique({ where: { name } });
      return row ? toRecord(row) : undefined;
    });
  }

  /** Tombstones a live provisioner; its token stops working with this commit. */
  async remove(name: string, at: Date, audit: AuditEntry): Promise<ProvisionerRecord | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const updated = await tx.provisioner.updateMany({ where: { name, deletedAt: null }, data: { deletedAt: at } });
      if (updated.count === 0) return undefined;
      await new AuditStore(tx).record({ ...audit, target: `provisioner:${name}` });
      const row = await tx.provisioner.findUnique({ where: { name } });
      return row ? toRecord(row) : undefined;
    });
  }
}
