// The CA's certificate vocabulary and codecs, pure functions over bytes: algorithms and
// OIDs, CSR intake, names, profiles, certificate/OCSP encoders and parsers, the URL
// scheme. No database, no token, no clock: everything above builds on this.
export { type KeyAlgorithm, type HashName, KEY_ALGORITHMS, SIGNATURE_ALGORITHMS, VERIFIABLE_SIGNATURE_HASHES, hashFor, keyAlgorithmOfSpki } from "./algorithms.ts";
export { OID } from "./oids.ts";
export { CaError, badRequest, conflict, forbidden, notFound, unavailable, type CaErrorKind } from "./errors.ts";
export { AsnConvert, toPem, pemBlocks, serialize } from "./der.ts";
export { parseCsr, parseCsrOffThread, namesOf, MAX_CSR_BYTES, type CsrProposal } from "./csr.ts";
export { type San, type SanType, formatSan, parseSan, sanProblem } from "./names.ts";
export { prefixMatchProblem } from "./uri.ts";
export {
  PROFILES,
  PROFILE_NAMES,
  DEFAULT_PROFILE,
  OCSP_RESPONDER_PROFILE,
  MIN_TTL_SECONDS,
  KEY_USAGE_BITS,
  isProfileName,
  keyUsagesFor,
  keyUsageBits,
  type Profile,
  type ProfileName,
  type CertificateProfileName,
  type KeyUsageName,
} from "./profiles.ts";
export { subjectKeyIdentifier } from "./key-identifier.ts";
export { canonicalSerial, serialPrefix } from "./serial.ts";
export { certificateView, fingerprints, type CertificateView, type CertificateFingerprints, type ExtensionView } from "./certificate-view.ts";
export { caCertificateFacts, type CaCertificateFacts, type IssuerFacts } from "./certificate-facts.ts";
export type { Signer } from "./signer.ts";
export {
  buildName,
  buildTbs,
  caExtensions,
  leafExtensions,
  newSerial,
  signCertificate,
  signatureAlgorithm,
  type IssuerIdentity,
  type RevocationUrls,
  type SerialHex,
} from "./tbs.ts";
export { encodeLeafTbs, leafTemplate, type LeafTemplate, type LeafTbsParams } from "./leaf-tbs.ts";
export { OCSP_PATH, revocationUrls, leafRevocationUrls, crlUrls, parseCrlFileName, parseCaCertificateFileName } from "./urls.ts";
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
export {
  signOcspResponse,
  PresignedResponseEncoder,
  ocspErrorResponse,
  certIdFor,
  publicKeyBits,
  OCSPResponseStatus,
  type PresignStatus,
  type SingleStatus,
  type ResponderIdentity,
} from "./ocsp/response.ts";
