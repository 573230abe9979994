// OCSP requests (RFC 6960 §4.1), parsed with @peculiar/asn1-ocsp. Anything that is not a
// well-formed request is a MalformedOcspRequest, which the responder answers with
// malformedRequest; it never throws anything else at the HTTP layer.
import { createHash } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { OCSPRequest, id_pkix_ocsp_nonce } from "@peculiar/asn1-ocsp";
import { OctetString } from "@peculiar/asn1-schema";

export const HASH_OIDS = {
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;
export type CertIdHash = keyof typeof HASH_OIDS;
const HASH_BY_OID = new Map<string, CertIdHash>(Object.entries(HASH_OIDS).map(([name, oid]) => [oid, name as CertIdHash]));

/** RFC 6960 §4.1.1 allows several requests; more than this is not a relying party. */
export const MAX_REQUESTS_PER_OCSP_REQUEST = 32;
/** RFC 8954 §2.1: a nonce is 1 to 32 octets. */
export const MAX_NONCE_BYTES = 32;

export class MalformedOcspRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedOcspRequest";
  }
}

export interface CertIdRequest {
  /** undefined when the CertID uses a hash this responder does not support */
  hash: CertIdHash | undefined;
  hashOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serialHex: string;
  /** the CertID exactly as the client sent it, to echo it back in a live response */
  certIdDer: Buffer;
}

export interface ParsedOcspRequest {
  requests: CertIdRequest[];
  /** the nonce extension's value (the inner OCTET STRING's contents) */
  nonce: Buffer | undefined;
  /** the nonce extension as sent, DER of the whole Extension, to echo */
  nonceExtensionDer: Buffer | undefined;
  /**
   * One CertID and nothing else: no extensions, requestor name or signature. Only such a
   * request's bytes may key a cache: everything else is a free-form way for a client to
   * spell the same question many times over.
   */
  plain: boolean;
}

/** Reads a DER length at `offset`; returns the header size and the content length. */
function derHeader(der: Buffer): { header: number; length: number } {
  if (der.length < 2) throw new MalformedOcspRequest("the request is too short to be DER");
  const first = der[1]!;
  if (first < 0x80) return { header: 2, length: first };
  const octets = first & 0x7f;
  if (octets === 0 || octets > 4 || der.length < 2 + octets) throw new MalformedOcspRequest("the request has an invalid DER length");
  let length = 0;
  for (let i = 0; i < octets; i++) length = length * 256 + der[2 + i]!;
  return { header: 2 + octets, length };
}

export function parseOcspRequest(der: Buffer): ParsedOcspRequest {
  if (der[0] !== 0x30) throw new MalformedOcspRequest("an OCSP request is a DER SEQUENCE");
  const { header, length } = derHeader(der);
  // asn1js stops at the end of the first element; trailing bytes would otherwise pass unnoticed.
  if (header + length !== der.length) throw new MalformedOcspRequest("the request has bytes after the DER SEQUENCE, or is truncated");
  let request: OCSPRequest;
  try {
    request = AsnConvert.parse(der, OCSPRequest);
  } catch (error) {
    throw new MalformedOcspRequest(`the request is not an OCSPRequest: ${(error as Error).message}`);
  }
  const list = request.tbsRequest.requestList;
  if (!list || list.length === 0) throw new MalformedOcspRequest("the request asks about no certificate");
  if (list.length > MAX_REQUESTS_PER_OCSP_REQUEST) throw new MalformedOcspRequest(`the request asks about ${list.length} certificates; at most ${MAX_REQUESTS_PER_OCSP_REQUEST} are answered`);
  const requests = list.map((r): CertIdRequest => {
    const id = r.reqCert;
    const serial = Buffer.from(id.serialNumber);
    if (serial.length === 0 || serial.length > 20 || serial[0]! & 0x80) throw new MalformedOcspRequest("a CertID serial number is not a positive integer of at most 20 octets");
    const hashOid = id.hashAlgorithm.algorithm;
    return {
      hash: HASH_BY_OID.get(hashOid),
      hashOid,
      issuerNameHash: Buffer.from(id.issuerNameHash.buffer),
      issuerKeyHash: Buffer.from(id.issuerKeyHash.buffer),
      // Our serials are stored as the INTEGER's minimal content octets, lowercase hex.
      serialHex: (serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial).toString("hex"),
      certIdDer: Buffer.from(AsnConvert.serialize(id)),
    };
  });
  let nonce: Buffer | undefined;
  let nonceExtensionDer: Buffer | undefined;
  const nonceExt = request.tbsRequest.requestExtensions?.find((e) => e.extnID === id_pkix_ocsp_nonce);
  if (nonceExt) {
    const raw = Buffer.from(nonceExt.extnValue.buffer);
    // RFC 8954 §2.1: the value is an OCTET STRING; older clients sent raw bytes, so accept both.
    try {
      nonce = Buffer.from(AsnConvert.parse(raw, OctetString).buffer);
    } catch {
      nonce = raw;
    }
    nonceExtensionDer = Buffer.from(AsnConvert.serialize(nonceExt));
  }
  const tbs = request.tbsRequest;
  const plain = requests.length === 1 && !tbs.requestorName && !tbs.requestExtensions?.length && !list[0]!.singleRequestExtensions?.length && !request.optionalSignature;
  return { requests, nonce, nonceExtensionDer, plain };
}

/** CertID hashes of an issuer (RFC 6960 §4.1.1): of its subject DER and of its public key bits. */
export function issuerHashes(subjectDer: Buffer, subjectPublicKeyBits: Buffer, hash: CertIdHash): { nameHash: Buffer; keyHash: Buffer } {
  return { nameHash: createHash(hash).update(subjectDer).digest(), keyHash: createHash(hash).update(subjectPublicKeyBits).digest() };
}
