// Issuer lifecycle (staged → active → retired → expired, and revocation of an intermediate)
// and the certificate questions the scheduler asks: which are due for renewal, which are
// about to expire, which chained to a given issuer.
import type pg from "pg";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
import { AuditStore } from "./audit.ts";
import { ISSUER_COLUMNS, type IssuerRecord } from "./issuers.ts";
import { CERTIFICATE_COLUMNS, type CertificateRecord } from "./certificates.ts";

export interface Activation {
  activated: IssuerRecord;
  retired: IssuerRecord[];
}

export class IssuerLifecycleStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Makes a staged intermediate the active one of its hierarchy and retires the one(s) it
   * replaces, in one transaction with their audit events, so readers never see zero or two
   * active intermediates.
   */
  async activate(issuerId: string, at: Date, actor: string): Promise<Activation> {
    return inTransaction(this.pool, async (client) => {
      const target = await queryOne<IssuerRecord>(client, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE id = $1`, [issuerId]);
      if (!target) throw new Error(`no issuer ${issuerId}`);
      if (target.role !== "intermediate") throw new Error(`issuer ${issuerId} is a root; only intermediates are activated`);
      if (target.status !== "staged") throw new Error(`issuer ${issuerId} is ${target.status}, not staged`);
      if (target.revokedAt) throw new Error(`issuer ${issuerId} is revoked`);
      // Lock the hierarchy's intermediates so two activations cannot interleave.
      await query(client, `SELECT id FROM issuers WHERE hierarchy = $1 AND role = 'intermediate' FOR UPDATE`, [target.hierarchy]);
      const previous = await query<IssuerRecord>(client, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE hierarchy = $1 AND role = 'intermediate' AND status = 'active'`, [target.hierarchy]);
      const audit = new AuditStore(client);
      const retired: IssuerRecord[] = [];
      for (const p of previous) {
        retired.push((await queryOne<IssuerRecord>(client, `UPDATE issuers SET status = 'retired', retired_at = $2 WHERE id = $1 RETURNING ${ISSUER_COLUMNS}`, [p.id, at]))!);
        await audit.record({ actor, action: "issuer.retire", target: p.id, details: { replacedBy: issuerId } });
      }
      const activated = (await queryOne<IssuerRecord>(client, `UPDATE issuers SET status = 'active', activated_at = $2, activate_at = NULL WHERE id = $1 RETURNING ${ISSUER_COLUMNS}`, [
        issuerId,
        at,
      ]))!;
      await audit.record({ actor, action: "issuer.activate", target: issuerId, details: { hierarchy: target.hierarchy, replaces: previous.map((p) => p.id) } });
      return { activated, retired };
    });
  }

  async scheduleActivation(issuerId: string, at: Date, actor: string): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      const updated = await execute(client, `UPDATE issuers SET activate_at = $2 WHERE id = $1 AND status = 'staged'`, [issuerId, at]);
      if (updated !== 1) throw new Error(`issuer ${issuerId} is not staged`);
      await new AuditStore(client).record({ actor, action: "issuer.schedule-activation", target: issuerId, details: { activateAt: at.toISOString() } });
    });
  }

  /** Staged intermediates whose activation time has come, earliest first. */
  async dueActivations(now: Date): Promise<IssuerRecord[]> {
    return query<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE status = 'staged' AND role = 'intermediate' AND revoked_at IS NULL AND activate_at <= $1 ORDER BY activate_at`, [
      now,
    ]);
  }

  async staged(hierarchy: string): Promise<IssuerRecord[]> {
    return query<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE status = 'staged' AND role = 'intermediate' AND hierarchy = $1 AND revoked_at IS NULL ORDER BY created_at`, [
      hierarchy,
    ]);
  }

  /**
   * Retired intermediates that have nothing left to answer for become `expired`: either
   * their own certificate has expired, or the last certificate they signed has. Until then
   * they stay in the keyring so their CRL and OCSP answers keep being signed.
   */
  async expireRetired(now: Date, actor: string): Promise<IssuerRecord[]> {
    const candidates = await query<IssuerRecord>(this.pool, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE status = 'retired' AND role = 'intermediate'`);
    const expired: IssuerRecord[] = [];
    for (const issuer of candidates) {
      const outstanding =
        issuer.notAfter > now
          ? (await queryOne<{ n: bigint }>(
              this.pool,
              `SELECT count(*) AS n FROM certificates WHERE issuer_id = $1 AND not_after > $2 AND status IN ('valid', 'revoked', 'pending') AND profile <> 'ocsp-responder'`,
              [issuer.id, now],
            ))!.n
          : 0n;
      if (outstanding > 0n) continue;
      await inTransaction(this.pool, async (client) => {
        const updated = await execute(client, `UPDATE issuers SET status = 'expired' WHERE id = $1 AND status = 'retired'`, [issuer.id]);
        if (updated === 1) await new AuditStore(client).record({ actor, action: "issuer.expire", target: issuer.id, details: { notAfter: issuer.notAfter.toISOString() } });
      });
      expired.push({ ...issuer, status: "expired" });
    }
    return expired;
  }

  /**
   * Records the revocation of an intermediate on its root's record (the root CRL lists it)
   * and takes it out of service: an active one becomes retired so it signs nothing new.
   */
  async revoke(issuerId: string, reason: number, at: Date, actor: string): Promise<IssuerRecord> {
    return inTransaction(this.pool, async (client) => {
      const issuer = await queryOne<IssuerRecord>(client, `SELECT ${ISSUER_COLUMNS} FROM issuers WHERE id = $1`, [issuerId]);
      if (!issuer) throw new Error(`no issuer ${issuerId}`);
      if (issuer.role !== "intermediate") throw new Error(`issuer ${issuerId} is a root; a root cannot be revoked here (distrust it instead)`);
      if (issuer.revokedAt) throw new Error(`issuer ${issuerId} is already revoked`);
      const status = issuer.status === "active" || issuer.status === "staged" ? "retired" : issuer.status;
      // retired_at moves only when this takes the issuer out of service
      const row = await queryOne<IssuerRecord>(
        client,
        `UPDATE issuers SET revoked_at = $2, revocation_reason = $3, status = $4, retired_at = CASE WHEN $5 THEN $2 ELSE retired_at END WHERE id = $1 RETURNING ${ISSUER_COLUMNS}`,
        [issuerId, at, reason, status, status !== issuer.status],
      );
      await new AuditStore(client).record({ actor, action: "issuer.revoke", target: issuerId, details: { reason, previousStatus: issuer.status } });
      return row!;
    });
  }
}

/** Certificate questions asked by the scheduler and the emergency rotation. */
export class CertificateScanStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Valid auto-renew certificates with no successor yet, two thirds (`fraction`) of whose
   * lifetime has passed and which have not expired.
   */
  async dueForRenewal(now: Date, fraction: number, exclude: string[] = [], limit = 500): Promise<CertificateRecord[]> {
    const rows = await query<{ serial: string }>(
      this.pool,
      `SELECT serial FROM certificates
        WHERE status = 'valid' AND auto_renew AND successor_serial IS NULL AND not_after > $1
          AND not_before + (not_after - not_before) * $2::float8 <= $1
          AND NOT (serial = ANY($4::text[]))
        ORDER BY not_after, serial LIMIT $3`,
      [now, fraction, limit, exclude],
    );
    return this.bySerials(rows.map((r) => r.serial));
  }

  /** Auto-renewed certificates whose renewal has not been announced yet (by the `renewed` alert). */
  async renewedUnannounced(now: Date, limit = 500): Promise<{ predecessor: string; successor: string }[]> {
    return query<{ predecessor: string; successor: string }>(
      this.pool,
      `SELECT p.serial AS predecessor, p.successor_serial AS successor FROM certificates p
         JOIN certificates s ON s.serial = p.successor_serial
        WHERE p.auto_renew AND s.status = 'valid' AND s.not_after > $1
          AND NOT EXISTS (SELECT 1 FROM alerts_sent a WHERE a.subject_kind = 'certificate' AND a.subject_id = p.serial AND a.alert = 'renewed')
        ORDER BY p.serial LIMIT $2`,
      [now, limit],
    );
  }

  /**
   * Valid certificates without a successor that expire after `now` and no later than
   * `until`, and that lived longer than `minLifetimeMs` (short-lived certificates, which
   * get no alerts, would otherwise crowd out the rest). Keyset-paginated on (notAfter,
   * serial): pass the last row of a page as `after` for the next.
   */
  async expiringBetween(now: Date, until: Date, minLifetimeMs = 0, after?: { notAfter: Date; serial: string }, limit = 1000): Promise<CertificateRecord[]> {
    const rows = await query<{ serial: string }>(
      this.pool,
      `SELECT serial FROM certificates
        WHERE status = 'valid' AND successor_serial IS NULL AND not_after > $1 AND not_after <= $2
          AND not_after - not_before > make_interval(secs => $3::float8 / 1000)
          AND ($4::timestamptz IS NULL OR (not_after, serial) > ($4::timestamptz, $5::text))
        ORDER BY not_after, serial LIMIT $6`,
      [now, until, minLifetimeMs, after?.notAfter ?? null, after?.serial ?? "", limit],
    );
    return this.bySerials(rows.map((r) => r.serial));
  }

  /** Unexpired valid certificates signed by `issuerId`: what a compromised intermediate leaves behind. */
  async chainedTo(issuerId: string, now: Date, limit = 100_000): Promise<CertificateRecord[]> {
    return query<CertificateRecord>(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE issuer_id = $1 AND status = 'valid' AND not_after > $2 ORDER BY not_after, serial LIMIT $3`, [
      issuerId,
      now,
      limit,
    ]);
  }

  private async bySerials(serials: string[]): Promise<CertificateRecord[]> {
    if (serials.length === 0) return [];
    return query<CertificateRecord>(this.pool, `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE serial = ANY($1::text[]) ORDER BY not_after, serial`, [serials]);
  }
}
