// RFC 5280 checks on a to-be-signed certificate, run before the token signs it.
// Hand-written because no maintained JavaScript certificate linter exists (zlint is Go,
// pkilint Python); the rule names follow zlint's e_/w_ convention so findings are familiar.
import { createHash } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,

  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Time,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
} from "@peculiar/asn1-x509";
import { keyAlgorithmOfSpki } from "@pki/hsm/algorithms";

export interface LintFinding {
  rule: string;
  severity: "error" | "warning";
  message: string;
}

export interface IssuerFacts {
  subjectDer: Buffer;
  spki: Buffer;
  notAfter: Date;
  /** the issuer's subject key identifier, which must be the leaf's AKI */
  subjectKeyId: Buffer;
}

export interface LintContext {
  kind: "root" | "intermediate" | "leaf";
  /** undefined for a self-signed root */
  issuer?: IssuerFacts;
}

export class LintError extends Error {
  constructor(readonly findings: LintFinding[]) {
    super(`certificate failed lint: ${findings.filter((f) => f.severity === "error").map((f) => `${f.rule} (${f.message})`).join("; ")}`);
    this.name = "LintError";
  }
}

// Extensions this CA puts in certificates; a critical extension outside this set is a bug.
const KNOWN_EXTENSIONS = new Set([
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
  "2.5.29.46", // freshestCRL
  "1.3.6.1.5.5.7.48.1.5", // id-pkix-ocsp-nocheck
]);

const SIGNATURE_FOR_KEY: Record<string, string> = {
  "ECDSA-P256": "1.2.840.10045.4.3.2",
  "ECDSA-P384": "1.2.840.10045.4.3.3",
  "RSA-2048": "1.2.840.113549.1.1.11",
  "RSA-3072": "1.2.840.113549.1.1.11",
  "RSA-4096": "1.2.840.113549.1.1.11",
};

/** RFC 5280 §4.1.2.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function subjectKeyIdentifier(spki: Buffer): Buffer {
  const parsed = AsnConvert.parse(spki, SubjectPublicKeyInfo);
  return createHash("sha1").update(Buffer.from(parsed.subjectPublicKey)).digest();
}

const timeOf = (t: Time): Date => t.getTime();
const isUtc = (t: Time): boolean => t.utcTime !== undefined;

export function lintCertificate(tbsDer: Buffer, context: LintContext): LintFinding[] {
  const findings: LintFinding[] = [];
  const error = (rule: string, message: string) => findings.push({ rule, severity: "error", message });
  const warn = (rule: string, message: string) => findings.push({ rule, severity: "warning", message });

  let tbs: TBSCertificate;
  try {
    tbs = AsnConvert.parse(tbsDer, TBSCertificate);
  } catch {
    error("e_tbs_unparseable", "the to-be-signed certificate is not valid DER");
    return findings;
  }

  if (tbs.version !== 2) error("e_version_not_v3", "certificates must be X.509 v3");

  const serial = Buffer.from(tbs.serialNumber);
  if (serial.length > 20) error("e_serial_too_long", `serial is ${serial.length} octets; at most 20`);
  if (serial.length === 0 || serial[0]! & 0x80 || serial.every((b) => b === 0)) error("e_serial_not_positive", "serial must be a positive integer");
  if (serial.length > 1 && serial[0] === 0 && !(serial[1]! & 0x80)) error("e_serial_not_minimal", "serial is not minimally encoded");
  if (serial.length < 9) error("e_serial_low_entropy", "serial must carry at least 64 bits of randomness");

  const notBefore = timeOf(tbs.validity.notBefore);
  const notAfter = timeOf(tbs.validity.notAfter);
  if (notBefore >= notAfter) error("e_validity_order", "notBefore must be before notAfter");
  for (const [label, t] of [["notBefore", tbs.validity.notBefore], ["notAfter", tbs.validity.notAfter]] as const) {
    const year = timeOf(t).getUTCFullYear();
    if (year < 2050 && !isUtc(t)) error("e_time_encoding", `${label} before 2050 must be UTCTime`);
    if (year >= 2050 && isUtc(t)) error("e_time_encoding", `${label} in 2050 or later must be GeneralizedTime`);
  }

  if (tbs.issuer.length === 0) error("e_issuer_empty", "issuer name must not be empty");

  const spki = Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo));
  const keyParams = new Uint8Array(tbs.subjectPublicKeyInfo.algorithm.parameters ?? new ArrayBuffer(0));
  if (tbs.subjectPublicKeyInfo.algorithm.algorithm === "1.2.840.10045.2.1" && keyParams[0] !== 0x06) error("e_ec_explicit_parameters", "EC keys must use a named curve");
  const keyAlgorithm = keyAlgorithmOfSpki(spki);
  if (typeof keyAlgorithm !== "string") error("e_weak_or_unknown_key", keyAlgorithm.unsupported);

  // Extensions
  const extensions = tbs.extensions ?? [];
  const seen = new Set<string>();
  for (const ext of extensions) {
    if (seen.has(ext.extnID)) error("e_ext_duplicate", `extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    if (ext.critical && !KNOWN_EXTENSIONS.has(ext.extnID)) error("e_ext_unknown_critical", `critical extension ${ext.extnID} is not one this CA issues`);
  }
  const find = (oid: string) => extensions.find((e) => e.extnID === oid);
  const parse = <T>(oid: string, type: new () => T): T | undefined => {
    const ext = find(oid);
    if (!ext) return undefined;
    try {
      return AsnConvert.parse(ext.extnValue, type);
    } catch {
      error("e_ext_unparseable", `extension ${oid} is not valid DER`);
      return undefined;
    }
  };

  const bc = parse(id_ce_basicConstraints, BasicConstraints);
  const ku = parse(id_ce_keyUsage, KeyUsage);
  const eku = parse(id_ce_extKeyUsage, ExtendedKeyUsage);
  const san = parse(id_ce_subjectAltName, SubjectAlternativeName);
  const ski = parse(id_ce_subjectKeyIdentifier, SubjectKeyIdentifier);
  const aki = parse(id_ce_authorityKeyIdentifier, AuthorityKeyIdentifier);
  const isCa = context.kind !== "leaf";

  if (!ku) error("e_key_usage_missing", "keyUsage must be present");
  else if (!find(id_ce_keyUsage)!.critical) warn("w_key_usage_not_critical", "keyUsage should be critical");
  const kuFlags = ku ? ku.toNumber() : 0;

  if (ski) {
    if (Buffer.compare(Buffer.from(ski.buffer), subjectKeyIdentifier(spki)) !== 0) error("e_ski_mismatch", "subjectKeyIdentifier does not match the public key");
  } else if (isCa) error("e_ski_missing", "CA certificates must carry a subjectKeyIdentifier");

  if (isCa) {
    if (!bc || !bc.cA) error("e_ca_basic_constraints", "CA certificates must assert basicConstraints cA=TRUE");
    else if (!find(id_ce_basicConstraints)!.critical) error("e_ca_basic_constraints_not_critical", "basicConstraints must be critical in CA certificates");
    if (!(kuFlags & KeyUsageFlags.keyCertSign)) error("e_ca_without_key_cert_sign", "CA certificates must have keyCertSign");
    if (context.kind === "intermediate" && bc?.pathLenConstraint !== 0) error("e_intermediate_path_len", "intermediates of this CA must have pathLenConstraint 0");
    if (eku) warn("w_ca_has_eku", "CA certificates of this CA carry no extendedKeyUsage");
  } else {
    if (bc?.cA) error("e_leaf_is_ca", "a leaf certificate must not assert cA=TRUE");
    if (bc?.pathLenConstraint !== undefined) error("e_path_len_without_ca", "pathLenConstraint is only for CA certificates");
    if (kuFlags & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) error("e_leaf_key_cert_sign", "a leaf certificate must not have keyCertSign or cRLSign");
    if (!eku || eku.length === 0) error("e_leaf_eku_missing", "leaf certificates must carry extendedKeyUsage");
    if (!san || san.length === 0) error("e_leaf_san_missing", "leaf certificates must name their subject in subjectAltName");
    if (!find(id_ce_cRLDistributionPoints)) error("e_leaf_crl_dp_missing", "leaf certificates must carry a CRL distribution point");
    else parse(id_ce_cRLDistributionPoints, CRLDistributionPoints);
    if (!find(id_pe_authorityInfoAccess)) error("e_leaf_aia_missing", "leaf certificates must carry OCSP and caIssuers URLs");
    else parse(id_pe_authorityInfoAccess, AuthorityInfoAccessSyntax);
  }

  if (tbs.subject.length === 0) {
    if (!san) error("e_subject_empty_without_san", "an empty subject requires a subjectAltName");
    else if (!find(id_ce_subjectAltName)!.critical) error("e_subject_empty_san_not_critical", "subjectAltName must be critical when the subject is empty");
  }
  for (const name of san ?? []) {
    const value = name.dNSName ?? name.rfc822Name ?? name.uniformResourceIdentifier ?? name.iPAddress;
    if (value === undefined) error("e_san_unsupported_type", "subjectAltName holds a name type this CA does not issue");
    else if (value.length === 0) error("e_san_empty", "subjectAltName entries must not be empty");
    else if (/[\u0000-\u001f\u007f]/.test(value)) error("e_san_control_chars", "subjectAltName entries must not contain control characters");
  }

  if (context.issuer) {
    const issuerName = Buffer.from(AsnConvert.serialize(tbs.issuer));
    if (Buffer.compare(issuerName, context.issuer.subjectDer) !== 0) error("e_issuer_name_mismatch", "issuer name is not the issuing CA's subject");
    if (!aki?.keyIdentifier) error("e_aki_missing", "authorityKeyIdentifier must be present");
    else if (Buffer.compare(Buffer.from(aki.keyIdentifier.buffer), context.issuer.subjectKeyId) !== 0) error("e_aki_mismatch", "authorityKeyIdentifier is not the issuer's key identifier");
    if (notAfter > context.issuer.notAfter) error("e_outlives_issuer", "notAfter is later than the issuer's notAfter");
    const issuerKey = keyAlgorithmOfSpki(context.issuer.spki);
    if (typeof issuerKey === "string" && tbs.signature.algorithm !== SIGNATURE_FOR_KEY[issuerKey]) error("e_signature_algorithm_mismatch", "signature algorithm does not fit the issuer's key");
  } else if (Buffer.compare(Buffer.from(AsnConvert.serialize(tbs.issuer)), Buffer.from(AsnConvert.serialize(tbs.subject))) !== 0) {
    error("e_root_not_self_issued", "a root certificate must have issuer = subject");
  }
  return findings;
}

/** Throws LintError when any rule fails with severity error. */
export function assertLintClean(tbsDer: Buffer, context: LintContext): LintFinding[] {
  const findings = lintCertificate(tbsDer, context);
  if (findings.some((f) => f.severity === "error")) throw new LintError(findings);
  return findings;
}

export { lintCrl, assertCrlLintClean, crlEntryProblem, type CrlLintContext } from "./crl.ts";
