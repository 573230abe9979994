import { EventEmitter } from "node:events";

export interface CertificateEvent {
  serial: string;
  issuerId: string;
}

export type RevokedEvent = CertificateEvent & { reason: number; revokedAt: Date };

/**
 * In-process notifications, so the OCSP signer and CRL publisher react at once in the
 * all-in-one process. Separate processes learn the same facts from the inventory.
 */
export class CaEvents extends EventEmitter<{ issued: [CertificateEvent]; revoked: [RevokedEvent] }> {
  private readonly revocationSteps = new Set<(event: RevokedEvent) => Promise<void>>();

  /**
   * Work a revocation finishes before it is reported done: the in-process OCSP signer
   * re-signs the certificate's response here, so an OCSP answer given after the revoke
   * call returns already says "revoked". A step handles its own failures.
   */
  beforeRevocationReported(step: (event: RevokedEvent) => Promise<void>): () => void {
    this.revocationSteps.add(step);
    return () => this.revocationSteps.delete(step);
  }

  /** Emits `revoked` and waits for every step registered with beforeRevocationReported. */
  async revocationCommitted(event: RevokedEvent): Promise<void> {
    this.emit("revoked", event);
    await Promise.all([...this.revocationSteps].map((step) => step(event)));
  }
}
