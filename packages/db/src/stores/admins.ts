import { createHash, randomUUID } from "node:crypto";
import type pg from "pg";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
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
  constructor(private readonly pool: pg.Pool) {}

  async count(): Promise<number> {
    const row = await queryOne<{ n: bigint }>(this.pool, `SELECT count(*) AS n FROM admin_tokens WHERE revoked_at IS NULL`);
    return Number(row!.n);
  }

  async add(name: string, token: string): Promise<string> {
    const id = randomUUID();
    await execute(this.pool, `INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)`, [id, name, hashToken(token)]);
    return id;
  }

  /**
   * A named operator's token, refused while that name has a live one (so `admin:NAME` in
   * the audit log means one person), audited in the same transaction.
   */
  async addOperator(name: string, token: string, audit: { actor: string }): Promise<string> {
    const id = randomUUID();
    await inTransaction(this.pool, async (client) => {
      if (await queryOne(client, `SELECT 1 FROM admin_tokens WHERE name = $1 AND revoked_at IS NULL LIMIT 1`, [name])) throw new AdminNameTakenError(name);
      await execute(client, `INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)`, [id, name, hashToken(token)]);
      await new AuditStore(client).record({ actor: audit.actor, action: "admin.create", target: name });
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
    return inTransaction(this.pool, async (client) => {
      const live = await query<{ tokenHash: string }>(client, `SELECT token_hash AS "tokenHash" FROM admin_tokens WHERE name = $1 AND revoked_at IS NULL`, [name]);
      if (live.length === 0) return "absent";
      const existing = await queryOne<{ name: string; revokedAt: Date | null }>(client, `SELECT name, revoked_at AS "revokedAt" FROM admin_tokens WHERE token_hash = $1`, [tokenHash]);
      if (existing) return existing.name === name && !existing.revokedAt && live.length === 1 ? "unchanged" : "taken";
      await execute(client, `UPDATE admin_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, [name, at]);
      await execute(client, `INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)`, [randomUUID(), name, tokenHash]);
      const sessionsEnded = await execute(client, `DELETE FROM console_sessions WHERE operator = $1`, [name]);
      await new AuditStore(client).record({ actor: audit.actor, action: "admin.rotate", target: name, details: { reason: audit.reason, sessionsEnded } });
      return "replaced";
    });
  }

  /** Every admin token ever made, oldest first (never the tokens themselves). */
  async list(): Promise<AdminRecord[]> {
    return query<AdminRecord>(this.pool, `SELECT name, created_at AS "createdAt", revoked_at AS "revokedAt" FROM admin_tokens ORDER BY created_at, id`);
  }

  /**
   * Revokes the operator's live token(s) and ends their console sessions in one
   * transaction, so nothing they hold works after this returns. False when there was no
   * live token by that name.
   */
  async remove(name: string, at: Date, audit: { actor: string }): Promise<{ sessionsEnded: number } | undefined> {
    return inTransaction(this.pool, async (client) => {
      const revoked = await execute(client, `UPDATE admin_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, [name, at]);
      if (revoked === 0) return undefined;
      const sessionsEnded = await execute(client, `DELETE FROM console_sessions WHERE operator = $1`, [name]);
      await new AuditStore(client).record({ actor: audit.actor, action: "admin.remove", target: name, details: { sessionsEnded } });
      return { sessionsEnded };
    });
  }

  /**
   * The admin's name when the token is a live admin token. Lookup is by hash, so timing
   * reveals nothing about the token. It runs on every authenticated request.
   */
  async verify(token: string): Promise<string | undefined> {
    const row = await queryOne<{ name: string }>(this.pool, `SELECT name FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, [hashToken(token)]);
    return row?.name;
  }
}
