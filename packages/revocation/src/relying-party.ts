// What a relying party sees about one of our certificates right now, found the way a
// relying party finds it: an OCSP request POSTed to the certificate's AIA OCSP URL and
// its CRL fetched from the CRL distribution point, each answer's signature checked
// against the issuer. Only URLs under this CA's own PKI_PUBLIC_URL are fetched (the
// certificate names them, but this runs inside the CA: it must never become a way to make
// the CA send requests elsewhere), with a time limit and a size limit, and no redirects.
import { X509Certificate, verify, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import "reflect-metadata";
import { AuthorityInfoAccessExtension, CRLDistributionPointsExtension, X509Certificate as ParsedCertificate } from "@peculiar/x509";
import { BasicOCSPResponse, CertID, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, TBSRequest, id_pkix_ocsp_basic } from "@peculiar/asn1-ocsp";
import { TAG, children, contents, decodeOid, decodeTime, readTlv, whole, type Tlv } from "@pki/der";
import { OID, VERIFIABLE_SIGNATURE_HASHES, certIdFor } from "@pki/x509";
import { REASON_NAMES } from "@pki/authority";

export interface RelyingPartyLimits {
  timeoutMs: number;
  ocspMaxBytes: number;
  crlMaxBytes: number;
}

export const RELYING_PARTY_LIMITS: RelyingPartyLimits = { timeoutMs: 2000, ocspMaxBytes: 1024 * 1024, crlMaxBytes: 64 * 1024 * 1024 };

export interface OcspView {
  url: string | null;
  status: "good" | "revoked" | "unknown" | "error";
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  revokedAt?: Date;
  reason?: string;
  error?: string;
}

export interface CrlView {
  url: string | null;
  listed: boolean;
  number: string | null;
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  error?: string;
}

/** The certificate's OCSP and CRL URLs (the first of each), read with @peculiar/x509. */
function revocationUrlsOf(certificateDer: Buffer): { ocsp: string | null; crl: string | null } {
  const cert = new ParsedCertificate(new Uint8Array(certificateDer));
  const ocsp = cert.getExtension(AuthorityInfoAccessExtension)?.ocsp.find((name) => name.type === "url")?.value ?? null;
  const points = cert.getExtension(CRLDistributionPointsExtension)?.distributionPoints ?? [];
  const crl = points.flatMap((p) => p.distributionPoint?.fullName ?? []).find((n) => n.uniformResourceIdentifier)?.uniformResourceIdentifier ?? null;
  return { ocsp, crl };
}

/** Refuses any URL outside this CA's public URL. */
function ownUrl(url: string, publicUrl: string): string {
  const base = publicUrl.replace(/\/+$/, "");
  if (!url.startsWith(`${base}/`)) throw new Error(`${url.slice(0, 200)} is not under this CA's public URL ${base}; not fetched`);
  return url;
}

/** A fetch that gives up after the time limit and past the size limit, and follows no redirect (exported for its tests). */
export async function fetchBounded(url: string, init: RequestInit, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  const response = await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`${url} answered HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new Error(`${url} answered ${declared} bytes, more than the ${maxBytes} this check reads`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`${url} answered more than the ${maxBytes} bytes this check reads`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

function checkSignature(signedBytes: Buffer, algorithmOid: string, signature: Buffer, key: KeyObject, what: string): void {
  const digest = VERIFIABLE_SIGNATURE_HASHES[algorithmOid];
  if (!digest) throw new Error(`${what} is signed with ${algorithmOid}, which this CA does not use`);
  if (!verify(digest, signedBytes, key, signature)) throw new Error(`${what}'s signature does not verify against the issuer`);
}

/** The public key that signed an OCSP response: the issuer's, or a responder certificate the issuer signed. */
function ocspSignerKey(basic: BasicOCSPResponse, issuer: X509Certificate): KeyObject {
  const [responder] = basic.certs ?? [];
  if (!responder) return issuer.publicKey;
  const cert = new X509Certificate(Buffer.from(AsnConvert.serialize(responder)));
  if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) throw new Error("the OCSP responder certificate was not issued by the certificate's issuer");
  return cert.publicKey;
}

const sameSerial = (a: Uint8Array, serialHex: string) =>
  Buffer.from(a)
    .toString("hex")
    .replace(/^(00)+(?=.)/, "") === serialHex.replace(/^(00)+(?=.)/, "");

async function askOcsp(url: string, serial: string, issuer: X509Certificate, issuerDer: Buffer, limits: RelyingPartyLimits): Promise<Omit<OcspView, "url">> {
  const issuerCert = AsnConvert.parse(issuerDer, Certificate);
  const certId = AsnConvert.parse(
    certIdFor("sha1", { subjectDer: Buffer.from(AsnConvert.serialize(issuerCert.tbsCertificate.subject)), spki: issuer.publicKey.export({ type: "spki", format: "der" }) }, serial),
    CertID,
  );
  const request = Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })] }) })));
  const body = await fetchBounded(url, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: request }, limits.ocspMaxBytes, limits.timeoutMs);
  const response = AsnConvert.parse(body, OCSPResponse);
  if (response.responseStatus !== OCSPResponseStatus.successful) throw new Error(`the responder answered ${OCSPResponseStatus[response.responseStatus] ?? response.responseStatus}`);
  if (!response.responseBytes || response.responseBytes.responseType !== id_pkix_ocsp_basic) throw new Error("the responder's answer is not a basic OCSP response");
  const basicDer = Buffer.from(response.responseBytes.response.buffer);
  const basic = AsnConvert.parse(basicDer, BasicOCSPResponse);
  const top = readTlv(basicDer);
  const [tbs, , signature] = children(basicDer, top);
  if (!tbs || !signature) throw new Error("the OCSP response is missing its signature");
  // BIT STRING contents: the unused-bits octet, then the signature
  checkSignature(whole(basicDer, tbs), basic.signatureAlgorithm.algorithm, contents(basicDer, signature).subarray(1), ocspSignerKey(basic, issuer), "the OCSP response");
  const single = basic.tbsResponseData.responses.find((r) => sameSerial(new Uint8Array(r.certID.serialNumber), serial));
  if (!single) throw new Error("the OCSP response says nothing about this certificate");
  const times = { thisUpdate: single.thisUpdate, nextUpdate: single.nextUpdate ?? null };
  if (single.certStatus.revoked) {
    const code = single.certStatus.revoked.revocationReason?.reason;
    return { status: "revoked", ...times, revokedAt: single.certStatus.revoked.revocationTime, reason: code === undefined ? "unspecified" : (REASON_NAMES[code] ?? String(code)) };
  }
  return { status: single.certStatus.good !== undefined ? "good" : "unknown", ...times };
}

/** Reads the CRL by walking its DER (a large CRL is never turned into objects), after checking its signature. */
function readCrl(der: Buffer, serial: string, issuer: X509Certificate): Omit<CrlView, "url"> {
  const top = readTlv(der);
  if (top.tag !== TAG.SEQUENCE || top.end !== der.length) throw new Error("the CRL is not one DER SEQUENCE");
  const [tbs, algorithm, signature] = children(der, top);
  if (!tbs || !algorithm || !signature) throw new Error("the CRL is missing its signature");
  const [algorithmOid] = children(der, algorithm);
  checkSignature(whole(der, tbs), decodeOid(contents(der, algorithmOid!)), contents(der, signature).subarray(1), issuer.publicKey, "the CRL");
  const fields = children(der, tbs);
  let i = fields[0]?.tag === TAG.INTEGER ? 1 : 0; // version
  i += 2; // signature algorithm, issuer
  const isTime = (t: Tlv | undefined) => t?.tag === TAG.UTC_TIME || t?.tag === TAG.GENERALIZED_TIME;
  const thisUpdate = decodeTime(der, fields[i++]!);
  const nextUpdate = isTime(fields[i]) ? decodeTime(der, fields[i++]!) : null;
  let listed = false;
  if (fields[i]?.tag === TAG.SEQUENCE) {
    for (const entry of children(der, fields[i++]!)) {
      const [entrySerial] = children(der, entry);
      if (entrySerial && sameSerial(contents(der, entrySerial), serial)) listed = true;
    }
  }
  let number: string | null = null;
  if (fields[i]?.tag === 0xa0) {
    const [extensions] = children(der, fields[i]!);
    for (const extension of children(der, extensions!)) {
      const parts = children(der, extension);
      if (decodeOid(contents(der, parts[0]!)) !== OID.crlNumber) continue;
      const value = contents(der, parts[parts.length - 1]!);
      number = BigInt(`0x${contents(value, readTlv(value)).toString("hex") || "0"}`).toString();
    }
  }
  return { listed, number, thisUpdate, nextUpdate };
}

const problem = (error: unknown) => ((error as Error).name === "TimeoutError" ? "no answer within the time limit" : (error as Error).message).slice(0, 500);

/**
 * Asks this CA's OCSP responder and reads its CRL about one certificate, as a relying
 * party would. Failures are reported in each half's `error`, never thrown.
 */
export async function relyingPartyView(
  params: { certificateDer: Buffer; serial: string; issuerDer: Buffer; publicUrl: string },
  limits: RelyingPartyLimits = RELYING_PARTY_LIMITS,
): Promise<{ ocsp: OcspView; crl: CrlView }> {
  const urls = revocationUrlsOf(params.certificateDer);
  const issuer = new X509Certificate(params.issuerDer);
  const [ocsp, crl] = await Promise.all([
    (async (): Promise<OcspView> => {
      if (!urls.ocsp) return { url: null, status: "error", thisUpdate: null, nextUpdate: null, error: "the certificate names no OCSP responder" };
      try {
        return { url: urls.ocsp, ...(await askOcsp(ownUrl(urls.ocsp, params.publicUrl), params.serial, issuer, params.issuerDer, limits)) };
      } catch (error) {
        return { url: urls.ocsp, status: "error", thisUpdate: null, nextUpdate: null, error: problem(error) };
      }
    })(),
    (async (): Promise<CrlView> => {
      if (!urls.crl) return { url: null, listed: false, number: null, thisUpdate: null, nextUpdate: null, error: "the certificate names no CRL distribution point" };
      try {
        const der = await fetchBounded(ownUrl(urls.crl, params.publicUrl), { method: "GET" }, limits.crlMaxBytes, limits.timeoutMs);
        return { url: urls.crl, ...readCrl(der, params.serial, issuer) };
      } catch (error) {
        return { url: urls.crl, listed: false, number: null, thisUpdate: null, nextUpdate: null, error: problem(error) };
      }
    })(),
  ]);
  return { ocsp, crl };
}
