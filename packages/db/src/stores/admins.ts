import { createHash, randomUUID } from "node:crypto";
import type pg from "pg";
import type { PrismaClient } from "../generated/prisma/client.ts";

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
   * The admin's name when the token is a live admin token. Lookup is by hash, so timing
   * reveals nothing about the token. Plain SQL: it runs on every authenticated request.
   */
  async verify(token: string): Promise<string | undefined> {
    const rows = await this.pool.query<{ name: string }>(`SELECT name FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, [hashToken(token)]);
    return rows.rows[0]?.name;
  }
}
