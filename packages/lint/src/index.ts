// RFC 5280 checks on a to-be-signed certificate, run before the token signs it.
// Hand-written because no maintained JavaScript certificate linter exists (zlint is Go,
// pkilint Python); the rule names follow zlint's e_/w_ convention so findings are familiar.
// It walks the DER with @pki/der rather than a general ASN.1 library: linting runs on
// every issuance and the general parser cost ~1 ms a certificate.
import { DerError, TAG, children, contents, decodeOid, decodeTime, expectTag, readTlv, whole, type Tlv } from "@pki/der";
import { OID, SIGNATURE_ALGORITHMS, keyAlgorithmOfSpki, type IssuerFacts, subjectKeyIdentifier } from "@pki/x509";

export type { IssuerFacts };
import { lintCrl, type CrlLintContext } from "./crl.ts";

export interface LintFinding {
  rule: string;
  severity: "error" | "warning";
  message: string;
}

export interface LintContext {
  kind: "root" | "intermediate" | "leaf";
  /** undefined for a self-signed root */
  issuer?: IssuerFacts;
}

export class LintError extends Error {
  constructor(readonly findings: LintFinding[]) {
    super(
      `certificate failed lint: ${findings
        .filter((f) => f.severity === "error")
        .map((f) => `${f.rule} (${f.message})`)
        .join("; ")}`,
    );
    this.name = "LintError";
  }
}

// Extensions this CA puts in certificates; a critical extension outside this set is a bug.
const KNOWN_EXTENSIONS = new Set<string>([
  OID.authorityKeyIdentifier,
  OID.basicConstraints,
  OID.crlDistributionPoints,
  OID.extKeyUsage,
  OID.keyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityInfoAccess,
  OID.freshestCrl,
  OID.ocspNoCheck,
]);

const KEY_CERT_SIGN = 0x04; // keyUsage bits, first octet: bit 5 = keyCertSign, bit 6 = cRLSign
const CRL_SIGN = 0x02;

interface ParsedExtension {
  id: string;
  critical: boolean;
  /** the extnValue OCTET STRING's contents */
  value: Buffer;
}

/** The parts of a TBSCertificate lint looks at; throws DerError on malformed structure. */
function parseTbs(tbsDer: Buffer) {
  const outer = readTlv(tbsDer);
  if (outer.end !== tbsDer.length) throw new DerError("trailing data after the TBS");
  const fields = children(tbsDer, expectTag(outer, TAG.SEQUENCE, "TBSCertificate"));
  let i = 0;
  let version = 0;
  if (fields[0]?.tag === 0xa0) {
    const [v] = children(tbsDer, fields[i++]!);
    version = contents(tbsDer, expectTag(v!, TAG.INTEGER, "version"))[0] ?? 0;
  }
  const serial = contents(tbsDer, expectTag(fields[i++]!, TAG.INTEGER, "serialNumber"));
  const [signatureOid] = children(tbsDer, expectTag(fields[i++]!, TAG.SEQUENCE, "signature"));
  const issuer = expectTag(fields[i++]!, TAG.SEQUENCE, "issuer");
  const [notBefore, notAfter] = children(tbsDer, expectTag(fields[i++]!, TAG.SEQUENCE, "validity"));
  const subject = expectTag(fields[i++]!, TAG.SEQUENCE, "subject");
  const spki = expectTag(fields[i++]!, TAG.SEQUENCE, "subjectPublicKeyInfo");
  const extensions: ParsedExtension[] = [];
  const extensionsField = fields.slice(i).find((f) => f.tag === 0xa3);
  if (extensionsField) {
    const [list] = children(tbsDer, extensionsField);
    for (const ext of children(tbsDer, expectTag(list!, TAG.SEQUENCE, "extensions"))) {
      const parts = children(tbsDer, expectTag(ext, TAG.SEQUENCE, "extension"));
      const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && contents(tbsDer, parts[1]!)[0] === 0xff;
      extensions.push({ id: decodeOid(contents(tbsDer, parts[0]!)), critical, value: contents(tbsDer, expectTag(parts.at(-1)!, TAG.OCTET_STRING, "extnValue")) });
    }
  }
  return {
    version,
    serial,
    signatureAlgorithm: decodeOid(contents(tbsDer, signatureOid!)),
    issuerDer: whole(tbsDer, issuer),
    subjectDer: whole(tbsDer, subject),
    subjectEmpty: subject.end === subject.contentStart,
    issuerEmpty: issuer.end === issuer.contentStart,
    notBefore: { tlv: notBefore!, date: decodeTime(tbsDer, notBefore!) },
    notAfter: { tlv: notAfter!, date: decodeTime(tbsDer, notAfter!) },
    spki: whole(tbsDer, spki),
    extensions,
  };
}

/** The elements of a SEQUENCE held in an extension value. */
const sequenceItems = (value: Buffer): Tlv[] => children(value, expectTag(readTlv(value), TAG.SEQUENCE, "extension value"));

export function lintCertificate(tbsDer: Buffer, context: LintContext): LintFinding[] {
  const findings: LintFinding[] = [];
  const error = (rule: string, message: string) => findings.push({ rule, severity: "error", message });
  const warn = (rule: string, message: string) => findings.push({ rule, severity: "warning", message });

  let tbs: ReturnType<typeof parseTbs>;
  try {
    tbs = parseTbs(tbsDer);
  } catch {
    error("e_tbs_unparseable", "the to-be-signed certificate is not valid DER");
    return findings;
  }

  if (tbs.version !== 2) error("e_version_not_v3", "certificates must be X.509 v3");

  const serial = tbs.serial;
  if (serial.length > 20) error("e_serial_too_long", `serial is ${serial.length} octets; at most 20`);
  if (serial.length === 0 || serial[0]! & 0x80 || serial.every((b) => b === 0)) error("e_serial_not_positive", "serial must be a positive integer");
  if (serial.length > 1 && serial[0] === 0 && !(serial[1]! & 0x80)) error("e_serial_not_minimal", "serial is not minimally encoded");
  if (serial.length < 9) error("e_serial_low_entropy", "serial must carry at least 64 bits of randomness");

  const notBefore = tbs.notBefore.date;
  const notAfter = tbs.notAfter.date;
  if (notBefore >= notAfter) error("e_validity_order", "notBefore must be before notAfter");
  for (const [label, t] of [
    ["notBefore", tbs.notBefore],
    ["notAfter", tbs.notAfter],
  ] as const) {
    const year = t.date.getUTCFullYear();
    const utc = t.tlv.tag === TAG.UTC_TIME;
    if (year < 2050 && !utc) error("e_time_encoding", `${label} before 2050 must be UTCTime`);
    if (year >= 2050 && utc) error("e_time_encoding", `${label} in 2050 or later must be GeneralizedTime`);
  }

  if (tbs.issuerEmpty) error("e_issuer_empty", "issuer name must not be empty");

  const keyAlgorithm = keyAlgorithmOfSpki(tbs.spki);
  if (typeof keyAlgorithm !== "string") error(/explicit parameters/.test(keyAlgorithm.unsupported) ? "e_ec_explicit_parameters" : "e_weak_or_unknown_key", keyAlgorithm.unsupported);

  const seen = new Set<string>();
  for (const ext of tbs.extensions) {
    if (seen.has(ext.id)) error("e_ext_duplicate", `extension ${ext.id} appears twice`);
    seen.add(ext.id);
    if (ext.critical && !KNOWN_EXTENSIONS.has(ext.id)) error("e_ext_unknown_critical", `critical extension ${ext.id} is not one this CA issues`);
  }
  const find = (id: string) => tbs.extensions.find((e) => e.id === id);
  /** Runs `read` over an extension's value; a DER failure becomes a finding. */
  const read = <T>(id: string, readValue: (value: Buffer) => T): T | undefined => {
    const ext = find(id);
    if (!ext) return undefined;
    try {
      return readValue(ext.value);
    } catch {
      error("e_ext_unparseable", `extension ${id} is not valid DER`);
      return undefined;
    }
  };

  const bc = read(OID.basicConstraints, (v) => {
    const items = sequenceItems(v);
    const cA = items[0]?.tag === TAG.BOOLEAN && contents(v, items[0]).at(0) === 0xff;
    const pathLen = items.find((t) => t.tag === TAG.INTEGER);
    return { cA, pathLen: pathLen ? contents(v, pathLen).readUIntBE(0, Math.min(6, pathLen.end - pathLen.contentStart)) : undefined };
  });
  const kuFlags = read(OID.keyUsage, (v) => contents(v, expectTag(readTlv(v), TAG.BIT_STRING, "keyUsage"))[1] ?? 0) ?? 0;
  const eku = read(OID.extKeyUsage, (v) => sequenceItems(v).map((t) => decodeOid(contents(v, t))));
  const sans = read(OID.subjectAltName, (v) => sequenceItems(v).map((t) => ({ tag: t.tag, value: contents(v, t) })));
  const ski = read(OID.subjectKeyIdentifier, (v) => contents(v, expectTag(readTlv(v), TAG.OCTET_STRING, "keyIdentifier")));
  const aki = read(OID.authorityKeyIdentifier, (v) => {
    const keyId = sequenceItems(v).find((t) => t.tag === 0x80);
    return keyId ? contents(v, keyId) : undefined;
  });
  const isCa = context.kind !== "leaf";

  if (!find(OID.keyUsage)) error("e_key_usage_missing", "keyUsage must be present");
  else if (!find(OID.keyUsage)!.critical) warn("w_key_usage_not_critical", "keyUsage should be critical");

  if (ski) {
    if (typeof keyAlgorithm === "string" && !ski.equals(subjectKeyIdentifier(tbs.spki))) error("e_ski_mismatch", "subjectKeyIdentifier does not match the public key");
  } else if (isCa) error("e_ski_missing", "CA certificates must carry a subjectKeyIdentifier");

  if (isCa) {
    if (!bc?.cA) error("e_ca_basic_constraints", "CA certificates must assert basicConstraints cA=TRUE");
    else if (!find(OID.basicConstraints)!.critical) error("e_ca_basic_constraints_not_critical", "basicConstraints must be critical in CA certificates");
    if (!(kuFlags & KEY_CERT_SIGN)) error("e_ca_without_key_cert_sign", "CA certificates must have keyCertSign");
    if (context.kind === "intermediate" && bc?.pathLen !== 0) error("e_intermediate_path_len", "intermediates of this CA must have pathLenConstraint 0");
    if (eku) warn("w_ca_has_eku", "CA certificates of this CA carry no extendedKeyUsage");
  } else {
    if (bc?.cA) error("e_leaf_is_ca", "a leaf certificate must not assert cA=TRUE");
    if (bc?.pathLen !== undefined) error("e_path_len_without_ca", "pathLenConstraint is only for CA certificates");
    if (kuFlags & (KEY_CERT_SIGN | CRL_SIGN)) error("e_leaf_key_cert_sign", "a leaf certificate must not have keyCertSign or cRLSign");
    if (!eku || eku.length === 0) error("e_leaf_eku_missing", "leaf certificates must carry extendedKeyUsage");
    // RFC 5280 allows a leaf named only by its subject (the empty-subject rules below cover
    // a leaf with no name at all). A TLS server is different: RFC 6125 clients ignore the CN,
    // and the clients that still fall back to it are the ones a CN must not mislead.
    if (sans?.length === 0) error("e_san_sequence_empty", "subjectAltName must hold at least one name");
    if (!sans && eku?.includes(OID.serverAuth)) error("e_server_auth_san_missing", "a TLS server certificate must name its host in subjectAltName");
    if (!find(OID.crlDistributionPoints)) error("e_leaf_crl_dp_missing", "leaf certificates must carry a CRL distribution point");
    else read(OID.crlDistributionPoints, sequenceItems);
    if (!find(OID.authorityInfoAccess)) error("e_leaf_aia_missing", "leaf certificates must carry OCSP and caIssuers URLs");
    else read(OID.authorityInfoAccess, sequenceItems);
  }

  if (tbs.subjectEmpty) {
    if (!sans) error("e_subject_empty_without_san", "an empty subject requires a subjectAltName");
    else if (!find(OID.subjectAltName)!.critical) error("e_subject_empty_san_not_critical", "subjectAltName must be critical when the subject is empty");
  }
  for (const name of sans ?? []) {
    // rfc822Name [1], dNSName [2], URI [6], iPAddress [7]: the only kinds this CA issues
    if (![0x81, 0x82, 0x86, 0x87].includes(name.tag)) error("e_san_unsupported_type", "subjectAltName holds a name type this CA does not issue");
    else if (name.value.length === 0) error("e_san_empty", "subjectAltName entries must not be empty");
    else if (name.tag === 0x87 ? name.value.length !== 4 && name.value.length !== 16 : /[\u0000-\u001f\u007f]/.test(name.value.toString("latin1"))) {
      error(
        name.tag === 0x87 ? "e_san_ip_length" : "e_san_control_chars",
        name.tag === 0x87 ? "iPAddress entries must be 4 or 16 octets" : "subjectAltName entries must not contain control characters",
      );
    }
  }

  if (context.issuer) {
    if (!tbs.issuerDer.equals(context.issuer.subjectDer)) error("e_issuer_name_mismatch", "issuer name is not the issuing CA's subject");
    if (!aki) error("e_aki_missing", "authorityKeyIdentifier must be present");
    else if (!aki.equals(context.issuer.subjectKeyId)) error("e_aki_mismatch", "authorityKeyIdentifier is not the issuer's key identifier");
    if (notAfter > context.issuer.notAfter) error("e_outlives_issuer", "notAfter is later than the issuer's notAfter");
    const issuerKey = context.issuer.keyAlgorithm ?? keyAlgorithmOfSpki(context.issuer.spki);
    if (typeof issuerKey === "string" && tbs.signatureAlgorithm !== SIGNATURE_ALGORITHMS[issuerKey].oid) error("e_signature_algorithm_mismatch", "signature algorithm does not fit the issuer's key");
  } else if (!tbs.issuerDer.equals(tbs.subjectDer)) {
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

export { lintCrl, crlEntryProblem, type CrlLintContext } from "./crl.ts";

/** Throws LintError when any CRL rule fails with severity error. */
export function assertCrlLintClean(tbsDer: Buffer, context: CrlLintContext): LintFinding[] {
  const findings = lintCrl(tbsDer, context);
  if (findings.some((f) => f.severity === "error")) throw new LintError(findings);
  return findings;
}
