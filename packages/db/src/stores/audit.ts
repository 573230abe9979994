import type { PrismaClient } from "../generated/prisma/client.ts";
import type { Prisma } from "../generated/prisma/client.ts";

export interface AuditEntry {
  /** who: "admin", "provisioner:<name>", "mtls:<serial>", "cli:<user>" */
  actor: string;
  /** what: "issuer.create", "certificate.issue", "certificate.revoke", … */
  action: string;
  target?: string;
  sourceIp?: string;
  outcome?: "ok" | "denied" | "error";
  details?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Pick<AuditEntry, "actor" | "action" | "outcome">> {
  id: bigint;
  at: Date;
  target: string | null;
  sourceIp: string | null;
  details: unknown;
}

export class AuditStore {
  constructor(private readonly prisma: Pick<PrismaClient, "auditEvent">) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.prisma.auditEvent.create({
      data: {
        actor: entry.actor,
        action: entry.action,
        target: entry.target ?? null,
        sourceIp: entry.sourceIp ?? null,
        outcome: entry.outcome ?? "ok",
        ...(entry.details ? { details: entry.details as Prisma.InputJsonValue } : {}),
      },
    });
  }

  async recent(limit = 50, target?: string): Promise<AuditRecord[]> {
    const rows = await this.prisma.auditEvent.findMany({ where: target ? { target } : {}, orderBy: { id: "desc" }, take: limit });
    return rows.map((r) => ({ ...r, outcome: r.outcome as AuditRecord["outcome"] }));
  }
}
