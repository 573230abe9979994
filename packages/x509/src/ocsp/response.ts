// OCSP responses (RFC 6960 §4.2, RFC 5019 profile), built with @peculiar/asn1-ocsp and
// signed on the token by the issuer's delegated responder key.
import { createHash } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  BasicOCSPResponse,
  CertID,
  CertStatus,
  KeyHash,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  id_pkix_ocsp_basic,
} from "@peculiar/asn1-ocsp";
import { AlgorithmIdentifier, CRLReason, Certificate, Extension, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import * as der from "@pki/der";
import { serialize } from "../der.ts";
import type { Signer } from "../signer.ts";
import { signatureAlgorithm } from "../tbs.ts";
import { HASH_OIDS, issuerHashes, type CertIdHash } from "./request.ts";

export { OCSPResponseStatus };

/** The public key bits (BIT STRING contents) of an SPKI: what CertID key hashes and ResponderID byKey hash. */
export function publicKeyBits(spki: Buffer): Buffer {
  return Buffer.from(AsnConvert.parse(spki, SubjectPublicKeyInfo).subjectPublicKey);
}

/** The CertID a relying party computes for a certificate of this issuer. */
export function certIdFor(hash: CertIdHash, issuer: { subjectDer: Buffer; spki: Buffer }, serialHex: string): Buffer {
  const { nameHash, keyHash } = issuerHashes(issuer.subjectDer, publicKeyBits(issuer.spki), hash);
  // SHA-1/SHA-256 AlgorithmIdentifiers with NULL parameters, as OpenSSL and GnuTLS send them.
  const id = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: HASH_OIDS[hash], parameters: new Uint8Array([0x05, 0x00]).buffer }),
    issuerNameHash: new OctetString(nameHash),
    issuerKeyHash: new OctetString(keyHash),
    serialNumber: new Uint8Array(Buffer.from(serialHex, "hex")).buffer,
  });
  return serialize(id);
}

export interface SingleStatus {
  /** the CertID DER, computed by certIdFor or echoed from the request */
  certIdDer: Buffer;
  status: "good" | "revoked" | "unknown";
  revokedAt?: Date | undefined;
  reason?: number | undefined;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface ResponderIdentity {
  /** the delegated responder certificate, sent along so clients can check the signature */
  certificateDer: Buffer;
  signer: Signer;
}

const wholeSeconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

const certStatus = (s: SingleStatus): CertStatus => {
  if (s.status === "good") return new CertStatus({ good: null });
  if (s.status === "unknown") return new CertStatus({ unknown: null });
  return new CertStatus({
    revoked: new RevokedInfo({
      revocationTime: wholeSeconds(s.revokedAt ?? s.thisUpdate),
      // RFC 5280 §5.3.1 advice carried over: leave "unspecified" out.
      ...(s.reason ? { revocationReason: new CRLReason(s.reason) } : {}),
    }),
  });
};

/**
 * Builds and signs a successful response. RFC 5019 responders identify themselves by key
 * hash; producedAt, thisUpdate and nextUpdate are whole seconds (GeneralizedTime without
 * fractions, which some clients refuse).
 */
export async function signOcspResponse(responder: ResponderIdentity, singles: SingleStatus[], options: { producedAt: Date; nonceExtensionDer?: Buffer | undefined }): Promise<Buffer> {
  const responderCert = AsnConvert.parse(responder.certificateDer, Certificate);
  const keyHash = createHash("sha1").update(publicKeyBits(responder.signer.publicKeySpki)).digest();
  const data = new ResponseData({
    responderID: new ResponderID({ byKey: new KeyHash(keyHash) }),
    producedAt: wholeSeconds(options.producedAt),
    responses: singles.map(
      (s) =>
        new SingleResponse({
          certID: AsnConvert.parse(s.certIdDer, CertID),
          certStatus: certStatus(s),
          thisUpdate: wholeSeconds(s.thisUpdate),
          nextUpdate: wholeSeconds(s.nextUpdate),
        }),
    ),
    ...(options.nonceExtensionDer ? { responseExtensions: [AsnConvert.parse(options.nonceExtensionDer, Extension)] } : {}),
  });
  const tbs = serialize(data);
  const signature = await responder.signer.sign(tbs);
  const basic = new BasicOCSPResponse({
    tbsResponseData: data,
    tbsResponseDataRaw: new Uint8Array(tbs).buffer,
    signatureAlgorithm: signatureAlgorithm(responder.signer.algorithm),
    signature: new Uint8Array(signature).buffer,
    certs: [responderCert],
  });
  const basicDer = serialize(basic);
  return serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus.successful, responseBytes: new ResponseBytes({ responseType: id_pkix_ocsp_basic, response: new OctetString(basicDer) }) }));
}

/** One certificate's status for a pre-signed response; the CertID is built from the serial. */
export interface PresignStatus {
  serialHex: string;
  status: "good" | "revoked";
  revokedAt?: Date | undefined;
  reason?: number | undefined;
  thisUpdate: Date;
  nextUpdate: Date;
}

/**
 * Signs single-certificate responses (no nonce) for one responder and one issuer, the
 * bytes signOcspResponse produces for the same input. The parts that never change (the
 * CertID up to the serial, the responder's key hash, the signature algorithm, the
 * responder certificate) are encoded once and each response is concatenated around its
 * serial, status and times with @pki/der. Hand-written because a profile of pre-signing
 * a 1M-certificate inventory showed signOcspResponse (asn1-schema building, parsing back
 * the CertID and the responder certificate, serializing them again) costing more CPU per
 * response than the token's signature; the unit test holds the two byte for byte equal.
 */
export class PresignedResponseEncoder {
  private readonly certIdPrefix = new Map<CertIdHash, Buffer>();
  private readonly responderId: Buffer;
  private readonly signatureAlgorithm: Buffer;
  private readonly certs: Buffer;

  constructor(
    private readonly responder: ResponderIdentity,
    private readonly issuer: { subjectDer: Buffer; spki: Buffer },
  ) {
    const keyHash = createHash("sha1").update(publicKeyBits(responder.signer.publicKeySpki)).digest();
    this.responderId = der.context(2, true, der.octetString(keyHash));
    this.signatureAlgorithm = serialize(signatureAlgorithm(responder.signer.algorithm));
    this.certs = der.context(0, true, der.sequence(responder.certificateDer));
  }

  /** The CertID's contents before its serialNumber, from certIdFor itself so the two agree. */
  private prefixFor(hash: CertIdHash): Buffer {
    let prefix = this.certIdPrefix.get(hash);
    if (!prefix) {
      const sample = certIdFor(hash, this.issuer, "01");
      const body = der.contents(sample, der.readTlv(sample));
      prefix = Buffer.from(body.subarray(0, body.length - 3)); // less INTEGER 1 (02 01 01)
      this.certIdPrefix.set(hash, prefix);
    }
    return prefix;
  }

  async sign(hash: CertIdHash, s: PresignStatus, producedAt: Date): Promise<Buffer> {
    // The serial's bytes as they are, as certIdFor writes them: relying parties send the
    // certificate's own INTEGER contents.
    const certId = der.sequence(this.prefixFor(hash), der.tlv(der.TAG.INTEGER, Buffer.from(s.serialHex, "hex")));
    const status =
      s.status === "good"
        ? GOOD
        : der.context(
            1,
            true,
            der.generalizedTime(wholeSeconds(s.revokedAt ?? s.thisUpdate)),
            // RFC 5280 §5.3.1 advice carried over: leave "unspecified" out.
            ...(s.reason ? [der.context(0, true, der.tlv(ENUMERATED, Buffer.from([s.reason])))] : []),
          );
    const single = der.sequence(certId, status, der.generalizedTime(wholeSeconds(s.thisUpdate)), der.context(0, true, der.generalizedTime(wholeSeconds(s.nextUpdate))));
    const tbs = der.sequence(this.responderId, der.generalizedTime(wholeSeconds(producedAt)), der.sequence(single));
    const signature = await this.responder.signer.sign(tbs);
    const basic = der.sequence(tbs, this.signatureAlgorithm, der.bitString(signature), this.certs);
    return der.sequence(SUCCESSFUL, der.context(0, true, der.sequence(BASIC_OID, der.octetString(basic))));
  }
}

const ENUMERATED = 0x0a;
/** good [0] IMPLICIT NULL */
const GOOD = Buffer.from([0x80, 0x00]);
const SUCCESSFUL = Buffer.from([ENUMERATED, 0x01, OCSPResponseStatus.successful]);
const BASIC_OID = der.oid(id_pkix_ocsp_basic);

/** An unsuccessful response: just the status (RFC 6960 §4.2.1), never signed. */
export function ocspErrorResponse(status: Exclude<OCSPResponseStatus, OCSPResponseStatus.successful>): Buffer {
  return Buffer.from([0x30, 0x03, 0x0a, 0x01, status]);
}
