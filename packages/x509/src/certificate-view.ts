// What the console shows of a signed certificate beyond the inventory's columns: its
// fingerprints and every extension, decoded where the CA knows the extension, as hex where
// it does not (an operator comparing with `openssl x509 -text` sees the same facts).
import "reflect-metadata";
import { createHash } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { type DistributionPoint, FreshestCRL, id_ce_freshestCRL } from "@peculiar/asn1-x509";
import {
  AuthorityInfoAccessExtension,
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  CRLDistributionPointsExtension,
  ExtendedKeyUsageExtension,
  type Extension,
  type GeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from "@peculiar/x509";

export interface CertificateFingerprints {
  /** upper-case hex byte pairs joined by colons, as browsers and `openssl x509 -fingerprint` show them */
  sha256: string;
  sha1: string;
}

export interface ExtensionView {
  oid: string;
  /** the extension's RFC 5280 name, or the OID when it is not one the CA knows */
  name: string;
  critical: boolean;
  /** the decoded values (key usage names, purposes, URLs, …), or the DER value in hex */
  values: string[];
}

export interface CertificateView {
  fingerprints: CertificateFingerprints;
  keyUsage: string[];
  extendedKeyUsage: string[];
  extensions: ExtensionView[];
}

const colonHex = (bytes: Buffer) => (bytes.toString("hex").toUpperCase().match(/../g) ?? []).join(":");

export function fingerprints(der: Buffer): CertificateFingerprints {
  return { sha256: colonHex(createHash("sha256").update(der).digest()), sha1: colonHex(createHash("sha1").update(der).digest()) };
}

const KEY_USAGE_NAMES = Object.entries(KeyUsageFlags).filter((e): e is [string, number] => typeof e[1] === "number");

const PURPOSES: Record<string, string> = {
  "1.3.6.1.5.5.7.3.1": "serverAuth",
  "1.3.6.1.5.5.7.3.2": "clientAuth",
  "1.3.6.1.5.5.7.3.3": "codeSigning",
  "1.3.6.1.5.5.7.3.4": "emailProtection",
  "1.3.6.1.5.5.7.3.8": "timeStamping",
  "1.3.6.1.5.5.7.3.9": "OCSPSigning",
};

const EXTENSION_NAMES: Record<string, string> = {
  "2.5.29.14": "subjectKeyIdentifier",
  "2.5.29.15": "keyUsage",
  "2.5.29.17": "subjectAltName",
  "2.5.29.19": "basicConstraints",
  "2.5.29.31": "cRLDistributionPoints",
  "2.5.29.32": "certificatePolicies",
  "2.5.29.35": "authorityKeyIdentifier",
  "2.5.29.37": "extKeyUsage",
  [id_ce_freshestCRL]: "freshestCRL",
  "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
  "1.3.6.1.5.5.7.48.1.5": "ocspNoCheck",
};

/** As the CA writes SANs (DNS:, IP:, URI:, email:) rather than @peculiar/x509's type names. */
const GENERAL_NAME_PREFIX: Record<string, string> = { dns: "DNS", ip: "IP", url: "URI", email: "email" };
const generalName = (n: GeneralName) => `${GENERAL_NAME_PREFIX[n.type] ?? n.type}:${n.value}`;

const pointUrls = (points: DistributionPoint[]) =>
  points.flatMap((dp) => (dp.distributionPoint?.fullName ?? []).map((n) => (n.uniformResourceIdentifier ? `URI:${n.uniformResourceIdentifier}` : "(not a URI)")));

function values(ext: Extension): string[] {
  if (ext instanceof KeyUsagesExtension) return KEY_USAGE_NAMES.filter(([, bit]) => ext.usages & bit).map(([name]) => name);
  if (ext instanceof ExtendedKeyUsageExtension) return ext.usages.map((u) => PURPOSES[String(u)] ?? String(u));
  if (ext instanceof BasicConstraintsExtension) return [`CA:${ext.ca ? "TRUE" : "FALSE"}`, ...(ext.pathLength === undefined ? [] : [`pathlen:${ext.pathLength}`])];
  if (ext instanceof SubjectAlternativeNameExtension) return ext.names.items.map(generalName);
  if (ext instanceof SubjectKeyIdentifierExtension) return [ext.keyId];
  if (ext instanceof AuthorityKeyIdentifierExtension) return ext.keyId ? [`keyid:${ext.keyId}`] : [];
  if (ext instanceof AuthorityInfoAccessExtension) return [...ext.ocsp.map((n) => `OCSP - ${generalName(n)}`), ...ext.caIssuers.map((n) => `CA Issuers - ${generalName(n)}`)];
  if (ext instanceof CRLDistributionPointsExtension) return pointUrls(ext.distributionPoints);
  // Where the delta CRLs are: the same shape as the CRL distribution points.
  if (ext.type === id_ce_freshestCRL) return pointUrls(AsnConvert.parse(ext.value, FreshestCRL));
  return [Buffer.from(ext.value).toString("hex")];
}

/** Fingerprints, key usage, extended key usage and every extension of a DER certificate. */
export function certificateView(der: Buffer): CertificateView {
  const cert = new X509Certificate(new Uint8Array(der));
  const extensions = cert.extensions.map((ext) => ({ oid: ext.type, name: EXTENSION_NAMES[ext.type] ?? ext.type, critical: ext.critical, values: values(ext) }));
  return {
    fingerprints: fingerprints(der),
    keyUsage: extensions.find((e) => e.oid === "2.5.29.15")?.values ?? [],
    extendedKeyUsage: extensions.find((e) => e.oid === "2.5.29.37")?.values ?? [],
    extensions,
  };
}
