import { createHash, randomUUID } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client.ts";

export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** Admin bearer tokens, kept as SHA-256 hashes: a database dump reveals no credential. */
export class AdminTokenStore {
  constructor(private readonly prisma: PrismaClient) {}

  async count(): Promise<number> {
    return this.prisma.adminToken.count({ where: { revokedAt: null } });
  }

  async add(name: string, token: string): Promise<string> {
    const id = randomUUID();
    await this.prisma.adminToken.create({ data: { id, name, tokenHash: hashToken(token) } });
    return id;
  }

  /** The admin's name when the token is a live admin token. Lookup is by hash, so timing reveals nothing about the token. */
  async verify(token: string): Promise<string | undefined> {
    const row = await this.prisma.adminToken.findUnique({ where: { tokenHash: hashToken(token) } });
    return row && !row.revokedAt ? row.name : undefined;
  }
}
