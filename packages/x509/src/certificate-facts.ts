import "reflect-metadata";
import { SubjectKeyIdentifierExtension, X509Certificate } from "@peculiar/x509";
import { keyAlgorithmOfSpki, type KeyAlgorithm } from "./algorithms.ts";

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

/** Reads a CA certificate with @peculiar/x509 (once per issuer, off the signing path). */
export function caCertificateFacts(der: Buffer): CaCertificateFacts {
  const cert = new X509Certificate(new Uint8Array(der));
  const spki = Buffer.from(cert.publicKey.rawData);
  const keyAlgorithm = keyAlgorithmOfSpki(spki);
  if (typeof keyAlgorithm !== "string") throw new Error(`CA certificate key: ${keyAlgorithm.unsupported}`);
  const ski = cert.getExtension(SubjectKeyIdentifierExtension);
  if (!ski) throw new Error("CA certificate has no subjectKeyIdentifier");
  return {
    der,
    spki,
    keyAlgorithm,
    subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()),
    subjectKeyId: Buffer.from(ski.keyId, "hex"),
    serial: cert.serialNumber.toLowerCase(),
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
