import type { PrismaClient } from "../generated/prisma/client.ts";
import type { Issuer } from "../generated/prisma/client.ts";

export type IssuerRecord = Omit<Issuer, "certificateDer" | "createdAt"> & { certificateDer: Buffer; createdAt?: Date };
export type IssuerStatus = IssuerRecord["status"];

const toRecord = (row: Issuer): IssuerRecord => ({ ...row, certificateDer: Buffer.from(row.certificateDer) });

/** The issuers of every hierarchy: roots and intermediates, whatever their status. */
export class IssuerStore {
  constructor(private readonly prisma: PrismaClient) {}

  async create(issuer: Omit<IssuerRecord, "createdAt" | "activatedAt" | "retiredAt" | "revokedAt" | "revocationReason" | "activateAt"> & Partial<IssuerRecord>): Promise<IssuerRecord> {
    const { createdAt: _ignored, ...data } = issuer;
    return toRecord(await this.prisma.issuer.create({ data: { ...data, certificateDer: new Uint8Array(issuer.certificateDer) } }));
  }

  async get(id: string): Promise<IssuerRecord | undefined> {
    const row = await this.prisma.issuer.findUnique({ where: { id } });
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<IssuerRecord[]> {
    const rows = await this.prisma.issuer.findMany({ orderBy: [{ hierarchy: "asc" }, { role: "asc" }, { notBefore: "asc" }] });
    return rows.map(toRecord);
  }

  async active(hierarchy: string, role: IssuerRecord["role"]): Promise<IssuerRecord | undefined> {
    const row = await this.prisma.issuer.findFirst({ where: { hierarchy, role, status: "active" }, orderBy: { activatedAt: "desc" } });
    return row ? toRecord(row) : undefined;
  }
}
