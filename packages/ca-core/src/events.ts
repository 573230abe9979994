import { EventEmitter } from "node:events";

export interface CertificateEvent {
  serial: string;
  issuerId: string;
}

/**
 * In-process notifications, so the OCSP signer and CRL publisher react at once in the
 * all-in-one process. Separate processes learn the same facts from the inventory.
 */
export class CaEvents extends EventEmitter<{ issued: [CertificateEvent]; revoked: [CertificateEvent & { reason: number; revokedAt: Date }] }> {}
