import { X509Certificate } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, SubjectKeyIdentifier, id_ce_subjectKeyIdentifier } from "@peculiar/asn1-x509";
import { keyAlgorithmOfSpki, type KeyAlgorithm } from "./algorithms.ts";
import { serialize } from "./der.ts";

/** What lint checks a certificate or CRL against about its issuer. */
export interface IssuerFacts {
  subjectDer: Buffer;
  spki: Buffer;
  notAfter: Date;
  /** the issuer's subject key identifier, which must be the leaf's AKI */
  subjectKeyId: Buffer;
  /** the issuer key's algorithm, when the caller already knows it */
  keyAlgorithm?: KeyAlgorithm;
}

/** What issuing under, or checking against, a CA certificate needs to know about it. */
export interface CaCertificateFacts extends IssuerFacts {
  der: Buffer;
  keyAlgorithm: KeyAlgorithm;
  serial: string;
  subject: string;
  notBefore: Date;
}

export function caCertificateFacts(der: Buffer): CaCertificateFacts {
  const cert = AsnConvert.parse(der, Certificate);
  const tbs = cert.tbsCertificate;
  const spki = serialize(tbs.subjectPublicKeyInfo);
  const keyAlgorithm = keyAlgorithmOfSpki(spki);
  if (typeof keyAlgorithm !== "string") throw new Error(`CA certificate key: ${keyAlgorithm.unsupported}`);
  const skiExt = tbs.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  if (!skiExt) throw new Error("CA certificate has no subjectKeyIdentifier");
  const x509 = new X509Certificate(der);
  return {
    der,
    spki,
    keyAlgorithm,
    subjectDer: serialize(tbs.subject),
    subjectKeyId: Buffer.from(AsnConvert.parse(skiExt.extnValue, SubjectKeyIdentifier).buffer),
    serial: Buffer.from(tbs.serialNumber).toString("hex"),
    subject: x509.subject.replaceAll("\n", ", "),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
  };
}
