// RFC 9773 (ACME Renewal Information): a certificate is named by its CertID,
// base64url(authorityKeyIdentifier) "." base64url(serial number DER content octets).
import type { CertificateRecord } from "@pki/db";
import { malformed } from "./problems.ts";

const B64URL = /^[A-Za-z0-9_-]{1,128}$/;

function split(certId: unknown): [Buffer, Buffer] {
  if (typeof certId !== "string") throw malformed("a CertID is a string 'base64url(AKI).base64url(serial)'");
  const [aki, serial, ...rest] = certId.split(".");
  if (rest.length || !aki || !serial || !B64URL.test(aki) || !B64URL.test(serial)) throw malformed("a CertID is 'base64url(AKI).base64url(serial)' (RFC 9773 §4.1)");
  return [Buffer.from(aki, "base64url"), Buffer.from(serial, "base64url")];
}

/** The inventory serial (lower-case hex) a CertID names. */
export function parseCertId(certId: unknown): string {
  const [, serial] = split(certId);
  if (serial.length === 0 || serial.length > 20) throw malformed("the CertID's serial number is not 1 to 20 octets");
  // DER adds a leading zero octet to keep a serial with its high bit set positive.
  const trimmed = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  return trimmed.toString("hex");
}

parseCertId.matchesIssuer = (certId: unknown, subjectKeyId: Buffer | Uint8Array): boolean => split(certId)[0].equals(Buffer.from(subjectKeyId));

export interface RenewalWindow {
  start: Date;
  end: Date;
  explanation?: string;
}

/**
 * When to renew: the same point the CA's own renewal uses (PKI_RENEW_AT_FRACTION of the
 * lifetime) up to halfway to expiry; a window that has already passed (renew now) when
 * the certificate or its issuer is revoked, or the certificate has been re-issued (an
 * operator's `issuers revoke --reissue`, or a renewal elsewhere): its holder should move on.
 */
export function renewalWindow(record: CertificateRecord, facts: { issuerRevoked: boolean; renewAtFraction: number; now: Date }): RenewalWindow {
  const reason = record.status === "revoked" ? "certificate revoked" : facts.issuerRevoked ? "issuer revoked" : record.successorSerial ? "certificate re-issued" : undefined;
  if (reason) return { start: new Date(facts.now.getTime() - 3600_000), end: facts.now, explanation: reason };
  const from = record.notBefore.getTime();
  const to = record.notAfter.getTime();
  const start = from + (to - from) * facts.renewAtFraction;
  return { start: new Date(start), end: new Date(start + (to - start) / 2) };
}
