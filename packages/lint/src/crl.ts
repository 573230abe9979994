// RFC 5280 §5 checks on a to-be-signed CRL, run before the token signs it. A CRL of a
// million entries is linted as its header (the same TBSCertList without the entries)
// plus a per-entry check the builder runs while it streams entries, so linting never
// needs the whole list parsed in memory.
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  CRLNumber,
  IssuingDistributionPoint,
  TBSCertList,
  type Time,
  id_ce_authorityKeyIdentifier,
  id_ce_cRLNumber,
  id_ce_deltaCRLIndicator,
  id_ce_issuingDistributionPoint,
} from "@peculiar/asn1-x509";
import { OID, SIGNATURE_ALGORITHMS, keyAlgorithmOfSpki, type IssuerFacts } from "@pki/x509";
// Types only: a value import from index.ts would make a module cycle (index re-exports this file).
import type { LintFinding } from "./index.ts";

const KNOWN_CRL_EXTENSIONS = new Set([id_ce_authorityKeyIdentifier, id_ce_cRLNumber, id_ce_deltaCRLIndicator, id_ce_issuingDistributionPoint, OID.freshestCrl]);
/** CRLReason codes an entry may carry; 0 (unspecified) must be left out, 7 does not exist. */
const ENTRY_REASONS = new Set([1, 2, 3, 4, 5, 6, 8, 9, 10]);

export interface CrlLintContext {
  kind: "full" | "delta";
  issuer: IssuerFacts;
}

const timeOf = (t: Time): Date => t.getTime();
const isUtc = (t: Time): boolean => t.utcTime !== undefined;

export function lintCrl(tbsDer: Buffer, context: CrlLintContext): LintFinding[] {
  const findings: LintFinding[] = [];
  const error = (rule: string, message: string) => findings.push({ rule, severity: "error", message });
  let tbs: TBSCertList;
  try {
    tbs = AsnConvert.parse(tbsDer, TBSCertList);
  } catch {
    error("e_crl_unparseable", "the to-be-signed CRL is not valid DER");
    return findings;
  }
  if (tbs.version !== 1) error("e_crl_version_not_v2", "CRLs with extensions must be v2");
  const issuerName = Buffer.from(AsnConvert.serialize(tbs.issuer));
  if (Buffer.compare(issuerName, context.issuer.subjectDer) !== 0) error("e_crl_issuer_mismatch", "CRL issuer is not the issuing CA's subject");
  const issuerKey = keyAlgorithmOfSpki(context.issuer.spki);
  if (typeof issuerKey === "string" && tbs.signature.algorithm !== SIGNATURE_ALGORITHMS[issuerKey].oid)
    error("e_crl_signature_algorithm_mismatch", "signature algorithm does not fit the issuer's key");
  if (!tbs.nextUpdate) error("e_crl_next_update_missing", "conforming CAs must include nextUpdate");
  else if (timeOf(tbs.nextUpdate) <= timeOf(tbs.thisUpdate)) error("e_crl_next_update_order", "nextUpdate must be after thisUpdate");
  for (const [label, t] of [
    ["thisUpdate", tbs.thisUpdate],
    ["nextUpdate", tbs.nextUpdate],
  ] as const) {
    if (!t) continue;
    const year = timeOf(t).getUTCFullYear();
    if (year < 2050 && !isUtc(t)) error("e_crl_time_encoding", `${label} before 2050 must be UTCTime`);
    if (year >= 2050 && isUtc(t)) error("e_crl_time_encoding", `${label} in 2050 or later must be GeneralizedTime`);
  }
  if (tbs.revokedCertificates && tbs.revokedCertificates.length === 0) error("e_crl_empty_revoked_list", "an empty revokedCertificates list must be absent");

  const extensions = tbs.crlExtensions ?? [];
  const seen = new Set<string>();
  for (const ext of extensions) {
    if (seen.has(ext.extnID)) error("e_crl_ext_duplicate", `extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    if (!KNOWN_CRL_EXTENSIONS.has(ext.extnID)) error("e_crl_ext_unknown", `extension ${ext.extnID} is not one this CA puts in CRLs`);
  }
  const find = (oid: string) => extensions.find((e) => e.extnID === oid);
  const aki = find(id_ce_authorityKeyIdentifier);
  if (!aki) error("e_crl_aki_missing", "CRLs must carry authorityKeyIdentifier");
  else {
    const keyId = AsnConvert.parse(aki.extnValue, AuthorityKeyIdentifier).keyIdentifier;
    if (!keyId || Buffer.compare(Buffer.from(keyId.buffer), context.issuer.subjectKeyId) !== 0) error("e_crl_aki_mismatch", "authorityKeyIdentifier is not the issuer's key identifier");
    if (aki.critical) error("e_crl_aki_critical", "authorityKeyIdentifier must not be critical");
  }
  const number = find(id_ce_cRLNumber);
  if (!number) error("e_crl_number_missing", "CRLs must carry a CRL number");
  else {
    if (number.critical) error("e_crl_number_critical", "the CRL number extension must not be critical");
    const der = Buffer.from(number.extnValue.buffer);
    // INTEGER tag, one length octet, at most 20 content octets (RFC 5280 §5.2.3)
    if (der[0] !== 0x02 || der[1]! > 20 || der[2]! & 0x80) error("e_crl_number_invalid", "the CRL number must be a non-negative INTEGER of at most 20 octets");
    else AsnConvert.parse(number.extnValue, CRLNumber);
  }
  const delta = find(id_ce_deltaCRLIndicator);
  if (context.kind === "delta") {
    if (!delta) error("e_delta_indicator_missing", "a delta CRL must carry the delta CRL indicator");
    else if (!delta.critical) error("e_delta_indicator_not_critical", "the delta CRL indicator must be critical");
    if (find(OID.freshestCrl)) error("e_delta_has_freshest_crl", "a delta CRL must not point at a fresher CRL");
  } else if (delta) error("e_full_has_delta_indicator", "a complete CRL must not carry the delta CRL indicator");
  const idp = find(id_ce_issuingDistributionPoint);
  if (idp) {
    if (!idp.critical) error("e_crl_idp_not_critical", "issuingDistributionPoint must be critical");
    const value = AsnConvert.parse(idp.extnValue, IssuingDistributionPoint);
    if (value.onlyContainsCACerts && value.onlyContainsUserCerts) error("e_crl_idp_conflict", "a CRL cannot be only for CA and only for user certificates");
  }
  for (const entry of tbs.revokedCertificates ?? []) {
    const problem = crlEntryProblem(Buffer.from(entry.userCertificate), timeOf(entry.revocationDate), undefined, timeOf(tbs.thisUpdate));
    if (problem) error(problem.rule, problem.message);
  }
  return findings;
}

/** One entry's problem, or undefined. Run by the streaming builder on every entry. */
export function crlEntryProblem(serial: Buffer, revokedAt: Date, reason: number | undefined, thisUpdate: Date): { rule: string; message: string } | undefined {
  if (serial.length === 0 || serial.length > 20) return { rule: "e_crl_entry_serial_length", message: `serial ${serial.toString("hex")} is not 1 to 20 octets` };
  if (serial[0]! & 0x80) return { rule: "e_crl_entry_serial_negative", message: `serial ${serial.toString("hex")} is negative` };
  if (revokedAt > thisUpdate) return { rule: "e_crl_entry_revoked_in_future", message: `serial ${serial.toString("hex")} has a revocation date after thisUpdate` };
  if (reason !== undefined && reason !== 0 && !ENTRY_REASONS.has(reason))
    return { rule: "e_crl_entry_reason", message: `serial ${serial.toString("hex")} has reason code ${reason}, which RFC 5280 does not define` };
  return undefined;
}
