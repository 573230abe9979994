// The issuing authority: the one pipeline every certificate the CA signs goes through
// (plan, authorise, build from a profile, lint, record intent, sign, store), the keyring
// of serving issuers, ceremonies and rotation, and the root-key CRL and OCSP signing.
export { inventoryFailure } from "./errors.ts";
export { Authority, successorRequester, type IssueRequest, type RenewRequest, type IssuedCertificate, type OwnCertificateRequest, type Requester } from "./authority.ts";
export { Keyring, StartupCheckError, type ServingIssuer } from "./keyring.ts";
export type { KeyringChange } from "./keyring.ts";
export {
  rotateIntermediate,
  activateIntermediate,
  activateDueIntermediates,
  presentedIssuerStatus,
  expireRetiredIntermediates,
  revokeIntermediate,
  reissueCertificates,
  REISSUE_CONCURRENCY,
  REISSUE_FAILURES_KEPT,
  type ReissueResult,
  type RotateParams,
  type RotationReport,
  type IssuerRevocationReport,
} from "./rotation.ts";
export { RecordedReissue, reissueStatus, REISSUE_STALE_MS, REISSUE_PROGRESS_WRITE_MS, type ReissueStatus } from "./reissue-run.ts";
export { initCa, createIntermediate, writeTrustFiles, writeAllTrustFiles, trustFilePaths, unexpiredIntermediates, type CeremonyReport } from "./ceremony.ts";
export { API_LISTENER_REQUESTER, INTERNAL_CERTIFICATE_MARKS, isInternalCertificate } from "./internal-certificates.ts";
export { writeSecretFile } from "./secret-file.ts";
export { openCa, openInventory, type CaRuntime } from "./runtime.ts";
export { type Clock, systemClock } from "./clock.ts";
export { LintError } from "@pki/lint";
export { CaEvents, type CertificateEvent, type RevokedEvent } from "./events.ts";
export { revokeCertificate, reasonCode, REVOCATION_REASONS, REASON_NAMES, type Revocation, type RevocationReasonName } from "./revocation.ts";
export { reconcilePendingIntents, clockSkewSeconds } from "./reconcile.ts";
export { buildAndSignCrl, encodeEntries, derTime, type CrlParams, type CrlScope, type CrlSink, type SignedCrl } from "./crl/builder.ts";
export { signRootCrls, rootCrlsDue, type RootCrlResult } from "./crl/root.ts";
