import { verify as verifySignature } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import {
  BasicConstraints,
  Extensions,
  GeneralNames,
  KeyUsage,
  KeyUsageFlags,
  Name,
  SubjectAlternativeName,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
} from "@peculiar/asn1-x509";
import { keyAlgorithmOfSpki, type KeyAlgorithm } from "@pki/hsm/algorithms";
import { badRequest } from "./errors.ts";
import { pemBlocks, serialize } from "./der.ts";
import { type San, sanProblem } from "./names.ts";

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const CN = "2.5.4.3";

// CSR signature algorithms we accept, and the hash each implies. SHA-1 is refused.
const SIGNATURE_HASHES: Record<string, string> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/** What a CSR proposes. Untrusted: policy decides which names survive, the profile the rest. */
export interface CsrProposal {
  publicKeySpki: Buffer;
  keyAlgorithm: KeyAlgorithm;
  commonName: string | undefined;
  sans: San[];
}

export const MAX_CSR_BYTES = 64 * 1024;

/** Parses a PEM or DER PKCS#10 request, checks proof of possession and the key's strength. */
export function parseCsr(input: string | Buffer): CsrProposal {
  let der: Buffer;
  if (typeof input === "string" || input.subarray(0, 64).toString("latin1").includes("-----BEGIN")) {
    let blocks: Buffer[];
    try {
      blocks = pemBlocks(input.toString(), ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);
    } catch (error) {
      throw badRequest(`the CSR's ${(error as Error).message}`);
    }
    if (blocks.length !== 1) throw badRequest(blocks.length ? "send exactly one CSR" : "the CSR is not PEM ('-----BEGIN CERTIFICATE REQUEST-----') or DER");
    der = blocks[0]!;
  } else {
    der = input;
  }
  if (der.length > MAX_CSR_BYTES) throw badRequest(`the CSR is ${der.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch {
    throw badRequest("the CSR is not a valid PKCS#10 structure");
  }
  if (!csr.certificationRequestInfoRaw) throw badRequest("the CSR is not a valid PKCS#10 structure");
  if (!isCanonical(csr, der)) throw badRequest("the CSR is not DER-encoded (trailing or non-canonical data)");
  const info = csr.certificationRequestInfo;
  if (info.version !== 0) throw badRequest(`CSR version ${info.version} is not PKCS#10 v1`);

  const algorithm = info.subjectPKInfo.algorithm;
  // EC keys must name their curve. Explicit parameters let a key impersonate a curve
  // (CVE-2020-0601, "curveball") and are refused before anything else looks at the key.
  if (algorithm.algorithm === "1.2.840.10045.2.1" && new Uint8Array(algorithm.parameters ?? new ArrayBuffer(0))[0] !== 0x06) {
    throw badRequest("EC keys with explicit parameters are not allowed; use a named curve (P-256 or P-384)");
  }
  const publicKeySpki = serialize(info.subjectPKInfo);
  const keyAlgorithm = keyAlgorithmOfSpki(publicKeySpki);
  if (typeof keyAlgorithm !== "string") throw badRequest(keyAlgorithm.unsupported);

  const hash = SIGNATURE_HASHES[csr.signatureAlgorithm.algorithm];
  if (!hash) throw badRequest(`CSR signature algorithm ${csr.signatureAlgorithm.algorithm} is not accepted (use ECDSA or RSA PKCS#1 v1.5 with SHA-256 or stronger)`);
  let valid = false;
  try {
    valid = verifySignature(hash, Buffer.from(csr.certificationRequestInfoRaw), { key: publicKeySpki, format: "der", type: "spki" }, Buffer.from(csr.signature));
  } catch {
    valid = false;
  }
  if (!valid) throw badRequest("CSR signature does not verify (no proof of possession of the private key)");

  return { publicKeySpki, keyAlgorithm, commonName: commonNameOf(info.subject), sans: requestedSans(csr) };
}

// Re-encoding must give back the same bytes; values the encoder cannot even re-encode
// (found by the fuzz tests) are as non-canonical as trailing data.
function isCanonical(csr: CertificationRequest, der: Buffer): boolean {
  try {
    return Buffer.compare(serialize(csr), der) === 0;
  } catch {
    return false;
  }
}

function commonNameOf(subject: Name): string | undefined {
  const values = subject.flatMap((rdn) => rdn.filter((atv) => atv.type === CN)).map((atv) => atv.value.toString());
  if (values.length > 1) throw badRequest("the CSR subject has more than one CN");
  return values[0];
}

/**
 * The profile decides extensions, so most requested ones are simply not copied. A request
 * for CA powers is different: it is refused outright, because it shows the requester
 * expects something this CA will never issue.
 */
function refuseCaRequest(oid: string, value: ArrayBuffer): void {
  try {
    if (oid === id_ce_basicConstraints && AsnConvert.parse(value, BasicConstraints).cA) throw badRequest("the CSR asks for CA:TRUE; this CA issues only leaf certificates");
    if (oid === id_ce_keyUsage && AsnConvert.parse(value, KeyUsage).toNumber() & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) {
      throw badRequest("the CSR asks for keyCertSign or cRLSign; this CA issues only leaf certificates");
    }
  } catch (error) {
    if (error instanceof Error && error.name === "CaError") throw error;
    throw badRequest(`the CSR's requested extension ${oid} cannot be parsed`);
  }
}

function requestedSans(csr: CertificationRequest): San[] {
  const sans: San[] = [];
  for (const attribute of csr.certificationRequestInfo.attributes) {
    if (attribute.type !== EXTENSION_REQUEST) continue;
    for (const value of attribute.values) {
      let extensions: Extensions;
      try {
        extensions = AsnConvert.parse(value, Extensions);
      } catch {
        throw badRequest("the CSR's extension request cannot be parsed");
      }
      const seen = new Set<string>();
      for (const ext of extensions) {
        if (seen.has(ext.extnID)) throw badRequest(`the CSR's extension request lists extension ${ext.extnID} twice`);
        seen.add(ext.extnID);
        refuseCaRequest(ext.extnID, ext.extnValue.buffer);
        if (ext.extnID !== id_ce_subjectAltName) continue; // the profile decides every other extension
        let names: GeneralNames;
        try {
          names = AsnConvert.parse(ext.extnValue, SubjectAlternativeName);
        } catch {
          throw badRequest("the CSR's subjectAltName extension cannot be parsed");
        }
        for (const name of names) {
          if (name.dNSName !== undefined) sans.push({ type: "DNS", value: name.dNSName });
          else if (name.iPAddress !== undefined) sans.push({ type: "IP", value: name.iPAddress });
          else if (name.uniformResourceIdentifier !== undefined) sans.push({ type: "URI", value: name.uniformResourceIdentifier });
          else if (name.rfc822Name !== undefined) sans.push({ type: "email", value: name.rfc822Name });
          else throw badRequest("the CSR asks for a SAN type this CA does not issue (only DNS, IP, URI and email)");
        }
      }
    }
  }
  for (const san of sans) {
    const problem = sanProblem(san);
    if (problem) throw badRequest(problem);
  }
  return sans;
}
