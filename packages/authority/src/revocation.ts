import type { CertificateRecord, Inventory } from "@pki/db";
import { canonicalSerial } from "@pki/x509";
import { CaError, badRequest, conflict, inventoryFailure, notFound } from "./errors.ts";
import type { CaEvents } from "./events.ts";
import type { Clock } from "./clock.ts";
import { certificatesRevoked } from "@pki/metrics";

/** RFC 5280 §5.3.1 CRLReason codes a leaf can be revoked with. certificateHold is not offered: holds are not reversible here. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReasonName = keyof typeof REVOCATION_REASONS;

/** All RFC 5280 reason names by code, for reading any CRL or inventory row. */
export const REASON_NAMES: Record<number, string> = {
  0: "unspecified",
  1: "keyCompromise",
  2: "cACompromise",
  3: "affiliationChanged",
  4: "superseded",
  5: "cessationOfOperation",
  6: "certificateHold",
  8: "removeFromCRL",
  9: "privilegeWithdrawn",
  10: "aACompromise",
};

export function reasonCode(name: string | undefined): number {
  if (name === undefined) return 0;
  if (!Object.hasOwn(REVOCATION_REASONS, name)) throw badRequest(`unknown revocation reason '${name}'; use one of ${Object.keys(REVOCATION_REASONS).join(", ")}`);
  return REVOCATION_REASONS[name as RevocationReasonName];
}

export interface Revocation {
  serial: string;
  issuerId: string;
  revokedAt: Date;
  reason: number;
  /** live successors revoked with it (keyCompromise follows the renewal chain) */
  successorsRevoked?: string[];
}

/** Revokes a leaf: in the inventory (with its audit event) before anyone is told it is done. */
export async function revokeCertificate(
  deps: { inventory: Inventory; events: CaEvents; clock: Clock },
  request: { serial: string; reason?: string | undefined; actor: string; sourceIp?: string | undefined },
): Promise<Revocation> {
  const serial = canonicalSerial(request.serial);
  if (serial === undefined) throw badRequest(`'${request.serial}' is not a certificate serial (hex, plain or colon-separated)`);
  const reason = reasonCode(request.reason);
  const at = new Date(Math.floor(deps.clock.now().getTime() / 1000) * 1000);
  const audit = { actor: request.actor, action: "certificate.revoke", target: serial, sourceIp: request.sourceIp, details: { reason: REASON_NAMES[reason] } };
  let result;
  try {
    // A compromised key may have renewed itself: its successors are revoked with it.
    result =
      reason === REVOCATION_REASONS.keyCompromise
        ? await deps.inventory.certificates.revokeWithSuccessors(serial, reason, at, audit)
        : await deps.inventory.certificates.revoke(serial, reason, at, audit);
  } catch (error) {
    throw inventoryFailure(error, `${serial} was not revoked`);
  }
  if ("refused" in result) {
    if (result.refused === "not_found") throw notFound(`no certificate with serial ${serial}`);
    if (result.refused === "already_revoked") throw conflict(`certificate ${serial} is already revoked`);
    throw new CaError("conflict", `certificate ${serial} was never issued, so it cannot be revoked`);
  }
  const successors: CertificateRecord[] = (result as { successors?: CertificateRecord[] }).successors ?? [];
  for (const record of [result.revoked, ...successors]) {
    const done = { serial: record.serial, issuerId: record.issuerId, revokedAt: at, reason };
    certificatesRevoked.inc({ issuer: done.issuerId, reason: REASON_NAMES[reason] ?? String(reason) });
    // The in-process OCSP signer re-signs before the caller hears "revoked" (see CaEvents).
    await deps.events.revocationCommitted(done);
  }
  const revocation: Revocation = { serial, issuerId: result.revoked.issuerId, revokedAt: at, reason, successorsRevoked: successors.map((r) => r.serial) };
  return revocation;
}
