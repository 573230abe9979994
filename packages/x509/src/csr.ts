// CSR intake walks the DER with @pki/der: it runs on every issuance, and the general
// ASN.1 parser (asn1js) cost ~0.7 ms a request. Structure is checked strictly (definite,
// minimal lengths, values exactly filling their containers) and the signature over the
// request info is verified with Node's crypto before any name is believed.
import { type JsonWebKeyInput, verify as verifySignature } from "node:crypto";
import { isIP } from "node:net";
import { DerError, TAG, children, contents, decodeOid, expectTag, readTlv, whole, type Tlv } from "@pki/der";
import { VERIFIABLE_SIGNATURE_HASHES, keyAlgorithmOfSpki, publicJwkOfSpki, type KeyAlgorithm } from "./algorithms.ts";
import { OID } from "./oids.ts";
import { CaError, badRequest } from "./errors.ts";
import { pemBlocks } from "./der.ts";
import { type San, formatSan, sanProblem } from "./names.ts";

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
  const request = readRequest(input);
  let valid = false;
  try {
    const { hash, signed, signature } = request.proof;
    valid = verifySignature(hash, signed, verificationKey(request), signature);
  } catch {
    valid = false;
  }
  return proposalOf(request, valid);
}

/**
 * parseCsr with the signature check in libuv's thread pool: the check is the largest single
 * cost of an issuance request, and on the event loop it stalls every other request meanwhile.
 */
export async function parseCsrOffThread(input: string | Buffer): Promise<CsrProposal> {
  const request = readRequest(input);
  const { hash, signed, signature } = request.proof;
  const valid = await new Promise<boolean>((resolve) => {
    try {
      verifySignature(hash, signed, verificationKey(request), signature, (error, ok) => resolve(!error && ok));
    } catch {
      resolve(false);
    }
  });
  return proposalOf(request, valid);
}

/** What proves possession of the key: the signature over the request info, checked by the caller. */
interface PossessionProof {
  hash: string;
  signed: Buffer;
  signature: Buffer;
}

/** Throws on a key OpenSSL cannot load (e.g. a point off the curve): the check then fails. */
const verificationKey = (request: SignedRequest): JsonWebKeyInput => ({ key: publicJwkOfSpki(request.publicKeySpki, request.keyAlgorithm), format: "jwk" });

/** A structurally sound request whose names are read only once its signature verified. */
interface SignedRequest {
  der: Buffer;
  proof: PossessionProof;
  publicKeySpki: Buffer;
  keyAlgorithm: KeyAlgorithm;
  subject: Tlv;
  attributes: Tlv | undefined;
}

function proposalOf(request: SignedRequest, signatureValid: boolean): CsrProposal {
  if (!signatureValid) throw badRequest("CSR signature does not verify (no proof of possession of the private key)");
  return refusingMalformed(() => {
    const { der, publicKeySpki, keyAlgorithm, subject, attributes } = request;
    const extensions = attributes ? requestedExtensions(der, attributes) : [];
    return { publicKeySpki, keyAlgorithm, commonName: commonNameOf(der, expectTag(subject, TAG.SEQUENCE, "subject")), sans: requestedSans(extensions) };
  });
}

/** Anything but a deliberate refusal means the structure was not what PKCS#10 says. */
function refusingMalformed<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof CaError) throw error;
    throw badRequest("the CSR is not a valid PKCS#10 structure", error);
  }
}

function readRequest(input: string | Buffer): SignedRequest {
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
  return refusingMalformed(() => readSigned(der));
}

function readSigned(der: Buffer): SignedRequest {
  const outer = readTlv(der);
  if (outer.end !== der.length) throw badRequest("the CSR is not DER-encoded (trailing or non-canonical data)");
  const [info, signatureAlgorithm, signature, ...extra] = children(der, expectTag(outer, TAG.SEQUENCE, "CertificationRequest"));
  if (!info || !signatureAlgorithm || !signature || extra.length) throw new DerError("CertificationRequest must have three parts");
  const [version, subject, spki, attributes] = children(der, expectTag(info, TAG.SEQUENCE, "CertificationRequestInfo"));
  if (!version || !subject || !spki) throw new DerError("CertificationRequestInfo is incomplete");
  if (contents(der, expectTag(version, TAG.INTEGER, "version")).toString("hex") !== "00") throw badRequest("the CSR is not PKCS#10 v1");

  const publicKeySpki = Buffer.from(whole(der, expectTag(spki, TAG.SEQUENCE, "subjectPKInfo")));
  const keyAlgorithm = keyAlgorithmOfSpki(publicKeySpki);
  if (typeof keyAlgorithm !== "string") throw badRequest(keyAlgorithm.unsupported);

  const [algorithmOid] = children(der, expectTag(signatureAlgorithm, TAG.SEQUENCE, "signatureAlgorithm"));
  const algorithm = decodeOid(contents(der, expectTag(algorithmOid!, TAG.OID, "signature algorithm")));
  const hash = VERIFIABLE_SIGNATURE_HASHES[algorithm];
  if (!hash) throw badRequest(`CSR signature algorithm ${algorithm} is not accepted (use ECDSA or RSA PKCS#1 v1.5 with SHA-256 or stronger)`);
  const signatureBits = contents(der, expectTag(signature, TAG.BIT_STRING, "signature"));
  // A bit string with unused bits cannot hold a signature; an empty one stands in so the check fails.
  const proof: PossessionProof = { hash, signed: whole(der, info), signature: signatureBits[0] === 0 ? signatureBits.subarray(1) : Buffer.alloc(0) };
  return { der, proof, publicKeySpki, keyAlgorithm, subject, attributes };
}

const STRING_DECODERS: Record<number, (bytes: Buffer) => string> = {
  0x0c: (b) => b.toString("utf8"), // UTF8String
  0x13: (b) => b.toString("latin1"), // PrintableString
  0x16: (b) => b.toString("latin1"), // IA5String
  0x14: (b) => b.toString("latin1"), // TeletexString, read as Latin-1 as OpenSSL does
  0x1e: (b) => Buffer.from(b).swap16().toString("utf16le"), // BMPString
};

function commonNameOf(der: Buffer, subject: Tlv): string | undefined {
  const values: string[] = [];
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, expectTag(rdn, TAG.SET, "RDN"))) {
      const [type, value] = children(der, expectTag(atv, TAG.SEQUENCE, "attribute"));
      if (decodeOid(contents(der, expectTag(type!, TAG.OID, "attribute type"))) !== OID.commonName) continue;
      const decode = STRING_DECODERS[value!.tag];
      if (!decode || (value!.tag === 0x1e && (value!.end - value!.contentStart) % 2)) throw badRequest("the CSR's CN is not a text string");
      values.push(decode(contents(der, value!)));
    }
  }
  if (values.length > 1) throw badRequest("the CSR subject has more than one CN");
  return values[0];
}

interface RequestedExtension {
  id: string;
  value: Buffer;
}

function requestedExtensions(der: Buffer, attributes: Tlv): RequestedExtension[] {
  if (attributes.tag !== 0xa0) throw new DerError("attributes must be [0]");
  const extensions: RequestedExtension[] = [];
  const seen = new Set<string>();
  for (const attribute of children(der, attributes)) {
    const [type, values] = children(der, expectTag(attribute, TAG.SEQUENCE, "attribute"));
    if (decodeOid(contents(der, expectTag(type!, TAG.OID, "attribute type"))) !== OID.extensionRequest) continue;
    for (const value of children(der, expectTag(values!, TAG.SET, "attribute values"))) {
      for (const ext of children(der, expectTag(value, TAG.SEQUENCE, "extensions"))) {
        const parts = children(der, expectTag(ext, TAG.SEQUENCE, "extension"));
        const id = decodeOid(contents(der, expectTag(parts[0]!, TAG.OID, "extension id")));
        if (seen.has(id)) throw badRequest(`the CSR's extension request lists extension ${id} twice`);
        seen.add(id);
        extensions.push({ id, value: contents(der, expectTag(parts.at(-1)!, TAG.OCTET_STRING, "extension value")) });
      }
    }
  }
  return extensions;
}

/**
 * The profile decides extensions, so most requested ones are simply not copied. A request
 * for CA powers is different: it is refused outright, because it shows the requester
 * expects something this CA will never issue.
 */
function refuseCaRequest(ext: RequestedExtension): void {
  try {
    if (ext.id === OID.basicConstraints) {
      const [first] = children(ext.value, expectTag(readTlv(ext.value), TAG.SEQUENCE, "basicConstraints"));
      if (first?.tag === TAG.BOOLEAN && contents(ext.value, first)[0] === 0xff) throw badRequest("the CSR asks for CA:TRUE; this CA issues only leaf certificates");
    }
    if (ext.id === OID.keyUsage) {
      const bits = contents(ext.value, expectTag(readTlv(ext.value), TAG.BIT_STRING, "keyUsage"));
      if ((bits[1] ?? 0) & 0x06) throw badRequest("the CSR asks for keyCertSign or cRLSign; this CA issues only leaf certificates");
    }
  } catch (error) {
    if (error instanceof DerError) throw badRequest(`the CSR's requested extension ${ext.id} cannot be parsed`);
    throw error;
  }
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run (two or more) of zero groups
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

// rfc822Name [1], dNSName [2] and uniformResourceIdentifier [6] are IA5Strings (RFC 5280)
const IA5_NAME_TYPES: Record<number, San["type"]> = { 0x81: "email", 0x82: "DNS", 0x86: "URI" };

/**
 * IA5String is 7-bit ASCII. A byte above 0x7f (UTF-8 'é', Latin-1) is refused here, not
 * decoded into some character: relying parties that follow the ASN.1 type cannot parse it.
 */
function ia5Text(bytes: Buffer, type: San["type"]): string {
  if (bytes.some((b) => b > 0x7f)) throw badRequest(`the CSR's ${type} SAN holds bytes outside ASCII, which an IA5String cannot (IDNs go in punycode, URIs percent-encoded)`);
  return bytes.toString("latin1");
}

function requestedSans(extensions: RequestedExtension[]): San[] {
  const sans: San[] = [];
  for (const ext of extensions) {
    refuseCaRequest(ext);
    if (ext.id !== OID.subjectAltName) continue; // the profile decides every other extension
    let names: Tlv[];
    try {
      names = children(ext.value, expectTag(readTlv(ext.value), TAG.SEQUENCE, "subjectAltName"));
    } catch {
      throw badRequest("the CSR's subjectAltName extension cannot be parsed");
    }
    for (const name of names) {
      const value = contents(ext.value, name);
      const ia5Type = IA5_NAME_TYPES[name.tag];
      if (ia5Type) sans.push({ type: ia5Type, value: ia5Text(value, ia5Type) });
      else if (name.tag === 0x87 && (value.length === 4 || value.length === 16)) sans.push({ type: "IP", value: ipText(value) });
      else throw badRequest("the CSR asks for a SAN type this CA does not issue (only DNS, IP, URI and email)");
    }
  }
  for (const san of sans) {
    const problem = sanProblem(san);
    if (problem) throw badRequest(problem);
  }
  return sans;
}

const MAX_SANS = 100;
const MAX_CN_LENGTH = 64; // RFC 5280 ub-common-name

/** The names a certificate will carry: the CN, and the SANs with the CN added where it is a host name. */
export function namesOf(csr: CsrProposal): { commonName: string | undefined; sans: San[] } {
  const sans = [...csr.sans];
  const cn = csr.commonName;
  if (cn !== undefined) {
    if (cn.length === 0 || cn.length > MAX_CN_LENGTH) throw badRequest(`the CSR's CN must be 1 to ${MAX_CN_LENGTH} characters`);
    if (/[\u0000-\u001f\u007f]/.test(cn)) throw badRequest("the CSR's CN contains control characters");
    const asSan: San | undefined = isIP(cn) ? { type: "IP", value: cn } : /^[a-z0-9*][a-z0-9.-]*\.[a-z0-9-]+$/i.test(cn) ? { type: "DNS", value: cn.toLowerCase() } : undefined;
    if (asSan && !sans.some((s) => s.type === asSan.type && s.value === asSan.value)) {
      const problem = sanProblem(asSan);
      if (problem) throw badRequest(problem.replace(/^SAN/, "CN as SAN"));
      sans.unshift(asSan);
    }
  }
  if (!cn && sans.length === 0) throw badRequest("the CSR names no subject: give it a CN or a subjectAltName");
  if (sans.length > MAX_SANS) throw badRequest(`the CSR asks for ${sans.length} SANs; at most ${MAX_SANS} are allowed`);
  const unique = new Map(sans.map((s) => [formatSan(s), s]));
  return { commonName: cn, sans: [...unique.values()] };
}
