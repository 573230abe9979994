// X.509 v2 CRLs, built streaming. The header and extensions are built with
// @peculiar/asn1-x509; the revoked-certificate entries are written as DER by hand, straight
// into one buffer per cursor batch, because building a million asn1-schema objects and
// serialising them would cost hundreds of megabytes and most of the build time (issue 7
// asks for a 1M-entry CRL in ≤ 256 MB RSS). The entry layout is fixed and small:
//   SEQUENCE { INTEGER serial, UTCTime revocationDate, [SEQUENCE { reasonCode ext }] }
import { createHash } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  CRLDistributionPoints,
  CRLNumber,
  DistributionPoint,
  DistributionPointName,
  Extension,
  Extensions,
  GeneralName,
  IssuingDistributionPoint,
  KeyIdentifier,
  id_ce_authorityKeyIdentifier,
  id_ce_cRLNumber,
  id_ce_deltaCRLIndicator,
  id_ce_issuingDistributionPoint,
} from "@peculiar/asn1-x509";
import * as der from "@pki/der";
import type { Signer } from "@pki/hsm";
import { assertCrlLintClean, LintError, type IssuerFacts } from "@pki/lint";
import type { RevokedEntry } from "@pki/db";
import type { KeyAlgorithm } from "@pki/hsm/algorithms";
import { serialize } from "../der.ts";
import { OID, signatureAlgorithm } from "../x509.ts";

const derLength = der.encodeLength;
const tlv = der.tlv;
/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §5.1.2.4). Whole seconds. */
export const derTime = der.time;

function derInteger(value: bigint): Buffer {
  const hex = value.toString(16);
  return der.unsignedInteger(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
}

const ext = (extnID: string, critical: boolean, valueDer: Buffer) => new Extension({ extnID, critical, extnValue: new OctetString(valueDer) });

export interface CrlScope {
  /** the URL this CRL is published at, as certificates name it in their CRL distribution point */
  url: string;
  /** intermediate CRLs cover end-entity certificates only; the root's covers CA certificates only */
  covers: "user" | "ca";
  /** for full CRLs of issuers that publish deltas: where the delta CRL is (Freshest CRL) */
  deltaUrl?: string;
}

export interface CrlParams {
  issuer: IssuerFacts & { keyAlgorithm: KeyAlgorithm };
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  scope: CrlScope;
  /** set for a delta CRL: the number of the complete CRL it updates */
  baseNumber?: bigint;
}

/** CRL extensions: AKI, CRL number, issuing distribution point, then delta indicator or Freshest CRL. */
export function crlExtensions(params: CrlParams): Extension[] {
  const list = [
    ext(id_ce_authorityKeyIdentifier, false, serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(params.issuer.subjectKeyId) }))),
    ext(id_ce_cRLNumber, false, params.number <= BigInt(Number.MAX_SAFE_INTEGER) ? serialize(new CRLNumber(Number(params.number))) : derInteger(params.number)),
    // Critical as RFC 5280 §5.2.5 requires. Its distribution point is the same URL the
    // certificates carry, so relying parties can match the CRL to the certificate.
    ext(
      id_ce_issuingDistributionPoint,
      true,
      serialize(
        new IssuingDistributionPoint({
          // The root's CRL names no distribution point: the root certificate itself carries none,
          // and OpenSSL's -crl_check_all also checks the root against it ("different CRL scope").
          ...(params.scope.covers === "user" ? { distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: params.scope.url })] }) } : {}),
          onlyContainsUserCerts: params.scope.covers === "user",
          onlyContainsCACerts: params.scope.covers === "ca",
        }),
      ),
    ),
  ];
  if (params.baseNumber !== undefined) list.push(ext(id_ce_deltaCRLIndicator, true, derInteger(params.baseNumber)));
  else if (params.scope.deltaUrl) {
    const point = new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: params.scope.deltaUrl })] }) });
    list.push(ext(OID.freshestCrl, false, serialize(new CRLDistributionPoints([point]))));
  }
  return list;
}

// reasonCode entry extension, all but the last octet (the ENUMERATED value):
// SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED } } }
const REASON_EXTENSION_PREFIX = Buffer.from("300c300a0603551d150403 0a01".replace(/ /g, ""), "hex");
const MAX_ENTRY_BYTES = 2 + (2 + 21) + 17 + REASON_EXTENSION_PREFIX.length + 1;

/** CRLReason codes an entry may carry (RFC 5280 §5.3.1; 7 is unused, 0 is left out). */
const ENTRY_REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

const refuse = (rule: string, message: string) => new LintError([{ rule, severity: "error", message }]);

/** Two decimal digits into `out` at `at`. */
function digits2(out: Buffer, at: number, value: number): void {
  out[at] = 0x30 + Math.floor(value / 10);
  out[at + 1] = 0x30 + (value % 10);
}

/**
 * Writes a batch of entries as DER into one buffer, checking each as it goes (the same
 * rules as crlEntryProblem in @pki/lint, inlined: this loop runs a million times for a
 * large CRL, so it writes bytes in place instead of allocating per entry).
 */
export function encodeEntries(entries: RevokedEntry[], thisUpdate: Date): Buffer {
  const out = Buffer.allocUnsafe(entries.length * MAX_ENTRY_BYTES);
  let at = 0;
  const thisUpdateSeconds = Math.floor(thisUpdate.getTime() / 1000);
  const date = new Date(0);
  for (const entry of entries) {
    const hex = entry.serialHex;
    // The inventory holds DER INTEGER contents already; a leading 1-bit would make it negative.
    const pad = hex.length > 0 && parseInt(hex[0]!, 16) >= 8 ? 1 : 0;
    const serialLength = hex.length / 2 + pad;
    if (hex.length === 0 || hex.length % 2 !== 0 || serialLength > 20) {
      throw refuse("e_crl_entry_serial_length", `serial ${hex} is not 1 to 20 octets`);
    }
    if (!ENTRY_REASONS.has(entry.reason)) throw refuse("e_crl_entry_reason", `serial ${hex} has reason code ${entry.reason}, which RFC 5280 does not define`);
    // A revocation stamped by a clock a little ahead of ours is listed at thisUpdate, never after it.
    date.setTime(Math.min(entry.revokedAt, thisUpdateSeconds) * 1000);
    const year = date.getUTCFullYear();
    const generalized = year >= 2050;
    const timeLength = generalized ? 17 : 15;
    const reasonBytes = entry.reason ? REASON_EXTENSION_PREFIX.length + 1 : 0;
    out[at++] = 0x30;
    out[at++] = 2 + serialLength + timeLength + reasonBytes; // always < 128: at most 23 + 17 + 14
    out[at++] = 0x02;
    out[at++] = serialLength;
    if (pad) out[at++] = 0;
    const written = out.write(hex, at, "hex");
    if (written !== hex.length / 2) throw refuse("e_crl_entry_serial_length", `serial ${hex} is not hexadecimal`);
    at += written;
    out[at++] = generalized ? 0x18 : 0x17;
    out[at++] = timeLength - 2;
    if (generalized) {
      digits2(out, at, Math.floor(year / 100));
      at += 2;
    }
    digits2(out, at, year % 100);
    digits2(out, at + 2, date.getUTCMonth() + 1);
    digits2(out, at + 4, date.getUTCDate());
    digits2(out, at + 6, date.getUTCHours());
    digits2(out, at + 8, date.getUTCMinutes());
    digits2(out, at + 10, date.getUTCSeconds());
    out[at + 12] = 0x5a; // Z
    at += 13;
    if (entry.reason) {
      at += REASON_EXTENSION_PREFIX.copy(out, at);
      out[at++] = entry.reason;
    }
  }
  return out.subarray(0, at);
}

/** SEQUENCE tag and the longest DER length this CA writes (4 length octets: up to 4 GiB). */
const OUTER_HEADER_ROOM = 6;
/** BIT STRING of the largest signature: RSA-4096 (512 octets) plus header and unused-bits octet. */
const MAX_SIGNATURE_TLV = 600;

export interface SignedCrl {
  der: Buffer;
  entries: number;
  etag: string;
}

/**
 * Builds the TBSCertList from streamed entry batches, lints its header (and every entry
 * as it is encoded), signs it with the issuer's key and returns the CRL DER.
 */
export async function buildAndSignCrl(params: CrlParams, batches: AsyncIterable<RevokedEntry[]>, signer: Signer, kind: "full" | "delta"): Promise<SignedCrl> {
  const thisUpdate = new Date(Math.floor(params.thisUpdate.getTime() / 1000) * 1000);
  const nextUpdate = new Date(Math.floor(params.nextUpdate.getTime() / 1000) * 1000);
  const version = Buffer.from([0x02, 0x01, 0x01]); // v2
  const algorithm = serialize(signatureAlgorithm(params.issuer.keyAlgorithm));
  const headerParts = [version, algorithm, params.issuer.subjectDer, derTime(thisUpdate), derTime(nextUpdate)];
  const extensionsDer = tlv(0xa0, serialize(new Extensions(crlExtensions(params))));

  // Lint what the token will sign, minus the entries (each entry was checked when encoded).
  assertCrlLintClean(tlv(0x30, ...headerParts, extensionsDer), { kind, issuer: params.issuer });

  const chunks: Buffer[] = [];
  let entries = 0;
  let entriesLength = 0;
  for await (const batch of batches) {
    const chunk = encodeEntries(batch, thisUpdate);
    chunks.push(chunk);
    entries += batch.length;
    entriesLength += chunk.length;
  }
  // An empty list must be absent (RFC 5280 §5.1.2.6).
  const revokedHeader = entries > 0 ? Buffer.concat([Buffer.from([0x30]), derLength(entriesLength)]) : Buffer.alloc(0);
  const bodyLength = headerParts.reduce((s, p) => s + p.length, 0) + revokedHeader.length + entriesLength + extensionsDer.length;
  const tbsHeader = Buffer.concat([Buffer.from([0x30]), derLength(bodyLength)]);
  const tbsLength = tbsHeader.length + bodyLength;
  // One allocation for the whole CRL: room for the outer SEQUENCE header in front, the TBS,
  // then the algorithm and signature. The TBS is signed in place and the certificate list
  // is framed around it, so a 50 MB CRL is never copied into a second 50 MB buffer.
  const der0 = Buffer.allocUnsafe(OUTER_HEADER_ROOM + tbsLength + algorithm.length + MAX_SIGNATURE_TLV);
  let at = OUTER_HEADER_ROOM;
  at += tbsHeader.copy(der0, at);
  for (const part of headerParts) at += part.copy(der0, at);
  at += revokedHeader.copy(der0, at);
  // The batch chunks are released as they are copied.
  while (chunks.length) at += chunks.shift()!.copy(der0, at);
  at += extensionsDer.copy(der0, at);
  if (at !== OUTER_HEADER_ROOM + tbsLength) throw new Error(`CRL assembly error: wrote ${at - OUTER_HEADER_ROOM} of ${tbsLength} TBS bytes`);
  const signature = await signer.sign(der0.subarray(OUTER_HEADER_ROOM, at));
  const signatureTlv = tlv(0x03, Buffer.from([0]), signature);
  if (signatureTlv.length > MAX_SIGNATURE_TLV) throw new Error("signature larger than any key this CA supports makes");
  at += algorithm.copy(der0, at);
  at += signatureTlv.copy(der0, at);
  const outerHeader = Buffer.concat([Buffer.from([0x30]), derLength(at - OUTER_HEADER_ROOM)]);
  outerHeader.copy(der0, OUTER_HEADER_ROOM - outerHeader.length);
  const der = der0.subarray(OUTER_HEADER_ROOM - outerHeader.length, at);
  return { der, entries, etag: `"${createHash("sha256").update(der).digest("base64url").slice(0, 32)}"` };
}
