export { CaError, inventoryFailure, type CaErrorKind } from "./errors.ts";
export { parseCsr, MAX_CSR_BYTES, type CsrProposal } from "./csr.ts";
export { PROFILES, PROFILE_NAMES, DEFAULT_PROFILE, isProfileName, type ProfileName } from "./profiles.ts";
export { type San, formatSan, parseSan, sanProblem } from "./names.ts";
export { Authority, MIN_TTL_SECONDS, namesOf, type IssueRequest, type IssuedCertificate, type Requester } from "./authority.ts";
export { Keyring, StartupCheckError, type ServingIssuer } from "./keyring.ts";
export type { KeyringChange } from "./keyring.ts";
export {
  rotateIntermediate,
  activateIntermediate,
  activateDueIntermediates,
  presentedIssuerStatus,
  expireRetiredIntermediates,
  revokeIntermediate,
  renewFromInventory,
  reissueCertificates,
  type RotateParams,
  type RotationReport,
  type IssuerRevocationReport,
  type RenewalPolicy,
} from "./rotation.ts";
export { initCa, createIntermediate, revocationUrls, leafRevocationUrls, writeTrustFiles, trustFilePaths, type CeremonyReport } from "./ceremony.ts";
export { API_LISTENER_REQUESTER, INTERNAL_CERTIFICATE_MARKS, isInternalCertificate } from "./internal-certificates.ts";
export { writeSecretFile } from "./secret-file.ts";
export { openCa, openInventory, type CaRuntime } from "./runtime.ts";
export { type Clock, systemClock } from "./clock.ts";
export { toPem, pemBlocks } from "./der.ts";
export { caCertificateFacts } from "./certificate-facts.ts";
export { LintError } from "@pki/lint";
export { CaEvents, type CertificateEvent } from "./events.ts";
export { revokeCertificate, reasonCode, REVOCATION_REASONS, REASON_NAMES, type Revocation, type RevocationReasonName } from "./revocation.ts";
export { reconcilePendingIntents, clockSkewSeconds } from "./reconcile.ts";
export { CrlPublisher, crlUrls, type CrlPublisherDeps } from "./crl/publisher.ts";
export { buildAndSignCrl, encodeEntries, derTime, type CrlParams, type CrlScope, type CrlSink, type SignedCrl } from "./crl/builder.ts";
export { signRootCrls, rootCrlsDue, type RootCrlResult } from "./crl/root.ts";
export {
  parseOcspRequest,
  issuerHashes,
  MalformedOcspRequest,
  HASH_OIDS,
  MAX_NONCE_BYTES,
  MAX_REQUESTS_PER_OCSP_REQUEST,
  type CertIdHash,
  type CertIdRequest,
  type ParsedOcspRequest,
} from "./ocsp/request.ts";
export { signOcspResponse, ocspErrorResponse, certIdFor, publicKeyBits, OCSPResponseStatus, type SingleStatus, type ResponderIdentity } from "./ocsp/response.ts";
export { OcspSigner, derEtag, destroyExpiredResponderKeys, OCSP_RESPONDER_PROFILE, RESPONDER_KEY_GRACE_MS, type DestroyedResponderKey, type LiveItem, type OcspSignerDeps } from "./ocsp/signer.ts";
export { relyingPartyView, RELYING_PARTY_LIMITS, type RelyingPartyLimits, type OcspView, type CrlView } from "./relying-party.ts";
