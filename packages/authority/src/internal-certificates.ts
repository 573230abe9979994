// Certificates the CA issues to itself rather than to services: they are renewed by the
// roles that use them, never re-issued for an operator, and shown apart from services'.
import type { CertificateRecord, InternalMarks } from "@pki/db";
import { OCSP_RESPONDER_PROFILE } from "@pki/x509";

/** The requester recorded on the issuing API's own TLS certificates. */
export const API_LISTENER_REQUESTER = "api:listener";

export function isInternalCertificate(record: Pick<CertificateRecord, "profile" | "requester">): boolean {
  return record.profile === OCSP_RESPONDER_PROFILE || record.requester === API_LISTENER_REQUESTER;
}

/** The same rule as isInternalCertificate, for the inventory to filter and count by. */
export const INTERNAL_CERTIFICATE_MARKS: InternalMarks = { profiles: [OCSP_RESPONDER_PROFILE], requesters: [API_LISTENER_REQUESTER] };
