import { createHash, randomUUID } from "node:crypto";
import type pg from "pg";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { AuditStore } from "./audit.ts";

export interface AdminRecord {
  name: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** An admin with this name already has a live token. */
export class AdminNameTakenError extends Error {
  constructor(name: string) {
    super(`an admin named '${name}' already exists; remove it first (pki admin remove ${name})`);
  }
}

export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** Admin bearer tokens, kept as SHA-256 hashes: a database dump reveals no credential. */
export class AdminTokenStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: pg.Pool,
  ) {}

  async count(): Promise<number> {
    return this.prisma.adminToken.count({ where: { revokedAt: null } });
  }

  async add(name: string, token: string): Promise<string> {
    const id = randomUUID();
    await this.prisma.adminToken.create({ data: { id, name, tokenHash: hashToken(token) } });
    return id;
  }

  /**
   * A named operator's token, refused while that name has a live one (so `admin:NAME` in
   * the audit log means one person), audited in the same transaction.
   */
  async addOperator(name: string, token: string, audit: { actor: string }): Promise<string> {
    const id = randomUUID();
    await this.prisma.$transaction(async (tx) => {
      if (await tx.adminToken.findFirst({ where: { name, revokedAt: null } })) throw new AdminNameTakenError(name);
      await tx.adminToken.create({ data: { id, name, tokenHash: hashToken(token) } });
      await new AuditStore(tx).record({ actor: audit.actor, action: "admin.create", target: name });
    });
    return id;
  }

  /**
   * Makes `token` the named operator's only live token, unless it already is: the old
   * token(s) are revoked and the operator's console sessions ended, audited, all in one
   * transaction. "absent" when the operator has no live token (removed on purpose: not
   * brought back); "taken" when `token` is, or was, another token (a revoked token is
   * never revived, and token hashes are unique).
   */
  async replace(name: string, token: string, at: Date, audit: { actor: string; reason: string }): Promise<"unchanged" | "replaced" | "absent" | "taken"> {
    const tokenHash = hashToken(token);
    return this.prisma.$transaction(async (tx) => {
      const live = await tx.adminToken.findMany({ where: { name, revokedAt: null }, select: { tokenHash: true } });
      if (live.length === 0) return "absent";
      const existing = await tx.adminToken.findUnique({ where: { tokenHash }, select: { name: true, revokedAt: true } });
      if (existing) return existing.name === name && !existing.revokedAt && live.length === 1 ? "unchanged" : "taken";
      await tx.adminToken.updateMany({ where: { name, revokedAt: null }, data: { revokedAt: at } });
      await tx.adminToken.create({ data: { id: randomUUID(), name, tokenHash } });
      const ended = await tx.consoleSession.deleteMany({ where: { operator: name } });
      await new AuditStore(tx).record({ actor: audit.actor, action: "admin.rotate", target: name, details: { reason: audit.reason, sessionsEnded: ended.count } });
      return "replaced";
    });
  }

  /** Every admin token ever made, oldest first (never the tokens themselves). */
  async list(): Promise<AdminRecord[]> {
    return this.prisma.adminToken.findMany({ select: { name: true, createdAt: true, revokedAt: true }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
  }

  /**
   * Revokes the operator's live token(s) and ends their console sessions in one
   * transaction, so nothing they hold works after this returns. False when there was no
   * live token by that name.
   */
  async remove(name: string, at: Date, audit: { actor: string }): Promise<{ sessionsEnded: number } | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const revoked = await tx.adminToken.updateMany({ where: { name, revokedAt: null }, data: { revokedAt: at } });
      if (revoked.count === 0) return undefined;
      const ended = await tx.consoleSession.deleteMany({ where: { operator: name } });
      await new AuditStore(tx).record({ actor: audit.actor, action: "admin.remove", target: name, details: { sessionsEnded: ended.count } });
      return { sessionsEnded: ended.count };
    });
  }

  /**
   * The admin's name when the token is a live admin token. Lookup is by hash, so timing
   * reveals nothing about the token. Plain SQL: it runs on every authenticated request.
   */
  async verify(token: string): Promise<string | undefined> {
    const rows = await this.pool.query<{ name: string }>(`SELECT name FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, [hashToken(token)]);
    return rows.rows[0]?.name;
  }
}
