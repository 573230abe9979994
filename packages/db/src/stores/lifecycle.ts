// Issuer lifecycle (staged → active → retired → expired, and revocation of an intermediate)
// and the certificate questions the scheduler asks: which are due for renewal, which are
// about to expire, which chained to a given issuer.
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { Issuer } from "../generated/prisma/client.ts";
import type pg from "pg";
import { AuditStore } from "./audit.ts";
import type { IssuerRecord } from "./issuers.ts";
import type { CertificateRecord } from "./certificates.ts";

const toIssuer = (row: Issuer): IssuerRecord => ({ ...row, certificateDer: Buffer.from(row.certificateDer) });

export interface Activation {
  activated: IssuerRecord;
  retired: IssuerRecord[];
}

export class IssuerLifecycleStore {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Makes a staged intermediate the active one of its hierarchy and retires the one(s) it
   * replaces, in one transaction with their audit events, so readers never see zero or two
   * active intermediates.
   */
  async activate(issuerId: string, at: Date, actor: string): Promise<Activation> {
    return this.prisma.$transaction(async (tx) => {
      const target = await tx.issuer.findUnique({ where: { id: issuerId } });
      if (!target) throw new Error(`no issuer ${issuerId}`);
      if (target.role !== "intermediate") throw new Error(`issuer ${issuerId} is a root; only intermediates are activated`);
      if (target.status !== "staged") throw new Error(`issuer ${issuerId} is ${target.status}, not staged`);
      if (target.revokedAt) throw new Error(`issuer ${issuerId} is revoked`);
      // Lock the hierarchy's intermediates so two activations cannot interleave.
      await tx.$queryRawUnsafe(`SELECT id FROM issuers WHERE hierarchy = $1 AND role = 'intermediate' FOR UPDATE`, target.hierarchy);
      const previous = await tx.issuer.findMany({ where: { hierarchy: target.hierarchy, role: "intermediate", status: "active" } });
      const audit = new AuditStore(tx);
      const retired: IssuerRecord[] = [];
      for (const p of previous) {
        retired.push(toIssuer(await tx.issuer.update({ where: { id: p.id }, data: { status: "retired", retiredAt: at } })));
        await audit.record({ actor, action: "issuer.retire", target: p.id, details: { replacedBy: issuerId } });
      }
      const activated = toIssuer(await tx.issuer.update({ where: { id: issuerId }, data: { status: "active", activatedAt: at, activateAt: null } }));
      await audit.record({ actor, action: "issuer.activate", target: issuerId, details: { hierarchy: target.hierarchy, replaces: previous.map((p) => p.id) } });
      return { activated, retired };
    });
  }

  async scheduleActivation(issuerId: string, at: Date, actor: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const updated = await tx.issuer.updateMany({ where: { id: issuerId, status: "staged" }, data: { activateAt: at } });
      if (updated.count !== 1) throw new Error(`issuer ${issuerId} is not staged`);
      await new AuditStore(tx).record({ actor, action: "issuer.schedule-activation", target: issuerId, details: { activateAt: at.toISOString() } });
    });
  }

  /** Staged intermediates whose activation time has come, earliest first. */
  async dueActivations(now: Date): Promise<IssuerRecord[]> {
    const rows = await this.prisma.issuer.findMany({ where: { status: "staged", role: "intermediate", revokedAt: null, activateAt: { lte: now } }, orderBy: { activateAt: "asc" } });
    return rows.map(toIssuer);
  }

  async staged(hierarchy: string): Promise<IssuerRecord[]> {
    const rows = await this.prisma.issuer.findMany({ where: { status: "staged", role: "intermediate", hierarchy, revokedAt: null }, orderBy: { createdAt: "asc" } });
    return rows.map(toIssuer);
  }

  /**
   * Retired intermediates that have nothing left to answer for become `expired`: either
   * their own certificate has expired, or the last certificate they signed has. Until then
   * they stay in the keyring so their CRL and OCSP answers keep being signed.
   */
  async expireRetired(now: Date, actor: string): Promise<IssuerRecord[]> {
    const candidates = await this.prisma.issuer.findMany({ where: { status: "retired", role: "intermediate" } });
    const expired: IssuerRecord[] = [];
    for (const issuer of candidates) {
      const outstanding =
        issuer.notAfter > now
          ? await this.prisma.certificate.count({ where: { issuerId: issuer.id, notAfter: { gt: now }, status: { in: ["valid", "revoked", "pending"] }, profile: { not: "ocsp-responder" } } })
          : 0;
      if (outstanding > 0) continue;
      await this.prisma.$transaction(async (tx) => {
        const updated = await tx.issuer.updateMany({ where: { id: issuer.id, status: "retired" }, data: { status: "expired" } });
        if (updated.count === 1) await new AuditStore(tx).record({ actor, action: "issuer.expire", target: issuer.id, details: { notAfter: issuer.notAfter.toISOString() } });
      });
      expired.push(toIssuer({ ...issuer, status: "expired" }));
    }
    return expired;
  }

  /**
   * Records the revocation of an intermediate on its root's record (the root CRL lists it)
   * and takes it out of service: an active one becomes retired so it signs nothing new.
   */
  async revoke(issuerId: string, reason: number, at: Date, actor: string): Promise<IssuerRecord> {
    return this.prisma.$transaction(async (tx) => {
      const issuer = await tx.issuer.findUnique({ where: { id: issuerId } });
      if (!issuer) throw new Error(`no issuer ${issuerId}`);
      if (issuer.role !== "intermediate") throw new Error(`issuer ${issuerId} is a root; a root cannot be revoked here (distrust it instead)`);
      if (issuer.revokedAt) throw new Error(`issuer ${issuerId} is already revoked`);
      const status = issuer.status === "active" || issuer.status === "staged" ? "retired" : issuer.status;
      const row = await tx.issuer.update({ where: { id: issuerId }, data: { revokedAt: at, revocationReason: reason, status, ...(status !== issuer.status ? { retiredAt: at } : {}) } });
      await new AuditStore(tx).record({ actor, action: "issuer.revoke", target: issuerId, details: { reason, previousStatus: issuer.status } });
      return toIssuer(row);
    });
  }
}

/** Certificate questions asked by the scheduler and the emergency rotation. */
export class CertificateScanStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: pg.Pool,
  ) {}

  /**
   * Valid auto-renew certificates with no successor yet, two thirds (`fraction`) of whose
   * lifetime has passed and which have not expired.
   */
  async dueForRenewal(now: Date, fraction: number, exclude: string[] = [], limit = 500): Promise<CertificateRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT serial FROM certificates
        WHERE status = 'valid' AND auto_renew AND successor_serial IS NULL AND not_after > $1
          AND not_before + (not_after - not_before) * $2::float8 <= $1
          AND NOT (serial = ANY($4::text[]))
        ORDER BY not_after, serial LIMIT $3`,
      [now, fraction, limit, exclude],
    );
    return this.bySerials(rows.map((r) => r.serial as string));
  }

  /** Auto-renewed certificates whose renewal has not been announced yet (by the `renewed` alert). */
  async renewedUnannounced(now: Date, limit = 500): Promise<{ predecessor: string; successor: string }[]> {
    const { rows } = await this.pool.query(
      `SELECT p.serial AS predecessor, p.successor_serial AS successor FROM certificates p
         JOIN certificates s ON s.serial = p.successor_serial
        WHERE p.auto_renew AND s.status = 'valid' AND s.not_after > $1
          AND NOT EXISTS (SELECT 1 FROM alerts_sent a WHERE a.subject_kind = 'certificate' AND a.subject_id = p.serial AND a.alert = 'renewed')
        ORDER BY p.serial LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ predecessor: r.predecessor as string, successor: r.successor as string }));
  }

  /**
   * Valid certificates without a successor that expire after `now` and no later than
   * `until`, and that lived longer than `minLifetimeMs` (short-lived certificates, which
   * get no alerts, would otherwise crowd out the rest). Keyset-paginated on (notAfter,
   * serial): pass the last row of a page as `after` for the next.
   */
  async expiringBetween(now: Date, until: Date, minLifetimeMs = 0, after?: { notAfter: Date; serial: string }, limit = 1000): Promise<CertificateRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT serial FROM certificates
        WHERE status = 'valid' AND successor_serial IS NULL AND not_after > $1 AND not_after <= $2
          AND not_after - not_before > make_interval(secs => $3::float8 / 1000)
          AND ($4::timestamptz IS NULL OR (not_after, serial) > ($4::timestamptz, $5::text))
        ORDER BY not_after, serial LIMIT $6`,
      [now, until, minLifetimeMs, after?.notAfter ?? null, after?.serial ?? "", limit],
    );
    return this.bySerials(rows.map((r) => r.serial as string));
  }

  /** Unexpired valid certificates signed by `issuerId`: what a compromised intermediate leaves behind. */
  async chainedTo(issuerId: string, now: Date, limit = 100_000): Promise<CertificateRecord[]> {
    const rows = await this.prisma.certificate.findMany({ where: { issuerId, status: "valid", notAfter: { gt: now } }, orderBy: [{ notAfter: "asc" }, { serial: "asc" }], take: limit });
    return rows.map((row) => ({ ...row, publicKeySpki: Buffer.from(row.publicKeySpki), tbsDer: Buffer.from(row.tbsDer), der: row.der ? Buffer.from(row.der) : null }));
  }

  private async bySerials(serials: string[]): Promise<CertificateRecord[]> {
    if (serials.length === 0) return [];
    const rows = await this.prisma.certificate.findMany({ where: { serial: { in: serials } }, orderBy: [{ notAfter: "asc" }, { serial: "asc" }] });
    return rows.map((row) => ({ ...row, publicKeySpki: Buffer.from(row.publicKeySpki), tbsDer: Buffer.from(row.tbsDer), der: row.der ? Buffer.from(row.der) : null }));
  }
}
