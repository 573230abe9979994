// X.509 v2 CRLs, built streaming. The header and extensions are built with
// @peculiar/asn1-x509; the revoked-certificate entries are written as DER by hand, straight
// into one buffer per cursor batch, because building a million asn1-schema objects and
// serialising them would cost hundreds of megabytes and most of the build time (a
// 1M-entry CRL must fit in 256 MB RSS). The entry layout is fixed and small:
//   SEQUENCE { INTEGER serial, UTCTime revocationDate, [SEQUENCE { reasonCode ext }] }
import { createHash } from "node:crypto";
import { OctetString } from "@peculiar/asn1-schema";
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
import { CrlSourceChangedError, type EntryShape, type RevokedEntry, type RevokedSource } from "@pki/db";
import type { KeyAlgorithm } from "@pki/x509";
import { serialize } from "@pki/x509";
import { OID, signatureAlgorithm } from "@pki/x509";

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
    // DER integers are minimal: a leading zero octet only in front of a high bit.
    if (hex.length > 2 && hex[0] === "0" && hex[1] === "0" && parseInt(hex[2]!, 16) < 8) throw refuse("e_crl_entry_serial_encoding", `serial ${hex} has a redundant leading zero octet`);
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

/** Encoded size of the entries `shapes` counts: the same layout encodeEntries writes. */
export function entriesLength(shapes: EntryShape[]): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const s of shapes) {
    const entry = 2 + 2 + s.serialHexLength / 2 + (s.signBit ? 1 : 0) + (s.from2050 ? 17 : 15) + (s.hasReason ? REASON_EXTENSION_PREFIX.length + 1 : 0);
    count += s.count;
    bytes += s.count * entry;
  }
  return { count, bytes };
}

/** The shape counts of entries held in memory (the root's CRL, tests). */
export function shapeOf(entries: RevokedEntry[], asOf: Date): EntryShape[] {
  const asOfSeconds = Math.floor(asOf.getTime() / 1000);
  const from2050Seconds = Date.UTC(2050, 0, 1) / 1000;
  const shapes = new Map<string, EntryShape>();
  for (const e of entries) {
    const shape = {
      serialHexLength: e.serialHex.length,
      signBit: parseInt(e.serialHex[0] ?? "0", 16) >= 8,
      hasReason: e.reason !== 0,
      from2050: Math.min(e.revokedAt, asOfSeconds) >= from2050Seconds,
    };
    const key = JSON.stringify(shape);
    const known = shapes.get(key);
    if (known) known.count++;
    else shapes.set(key, { ...shape, count: 1 });
  }
  return [...shapes.values()];
}

/** Entries held in memory as a RevokedSource. */
export function inMemorySource(entries: RevokedEntry[]): RevokedSource {
  return {
    shape: async (asOf) => shapeOf(entries, asOf),
    [Symbol.asyncIterator]: async function* () {
      if (entries.length) yield entries;
    },
  };
}

/** Parts of about this size go to the sink: big enough to keep round trips few, small enough to keep memory flat. */
const PART_BYTES = 1024 * 1024;

export interface SignedCrl {
  entries: number;
  etag: string;
}

/** Where the CRL's DER goes, part by part: the CRL is the parts in `seq` order. */
export type CrlSink = (seq: number, bytes: Buffer) => Promise<void>;

/**
 * Builds the TBSCertList from streamed entry batches, lints its header (and every entry as
 * it is encoded), signs it with the issuer's key and writes the CRL to `sink`.
 *
 * Streamed, so a million-entry CRL (45 MB) is never whole in memory: the entries' shape
 * counts give the exact DER lengths up front, the TBS goes through the hash and out to the
 * sink as it is encoded, the token signs the digest, and the outer header, known only once
 * the signature's length is, goes out last as part 0.
 */
export async function buildAndSignCrl(params: CrlParams, source: RevokedSource, signer: Signer, kind: "full" | "delta", sink: CrlSink): Promise<SignedCrl> {
  const thisUpdate = new Date(Math.floor(params.thisUpdate.getTime() / 1000) * 1000);
  const nextUpdate = new Date(Math.floor(params.nextUpdate.getTime() / 1000) * 1000);
  const version = Buffer.from([0x02, 0x01, 0x01]); // v2
  const algorithm = serialize(signatureAlgorithm(params.issuer.keyAlgorithm));
  const headerParts = [version, algorithm, params.issuer.subjectDer, derTime(thisUpdate), derTime(nextUpdate)];
  const extensionsDer = tlv(0xa0, serialize(new Extensions(crlExtensions(params))));

  // Lint what the token will sign, minus the entries (each entry is checked when encoded).
  assertCrlLintClean(tlv(0x30, ...headerParts, extensionsDer), { kind, issuer: params.issuer });

  const expected = entriesLength(await source.shape(thisUpdate));
  // An empty list must be absent (RFC 5280 §5.1.2.6).
  const revokedHeader = expected.count > 0 ? Buffer.concat([Buffer.from([0x30]), derLength(expected.bytes)]) : Buffer.alloc(0);
  const bodyLength = headerParts.reduce((s, p) => s + p.length, 0) + revokedHeader.length + expected.bytes + extensionsDer.length;
  const tbsHeader = Buffer.concat([Buffer.from([0x30]), derLength(bodyLength)]);

  const hash = createHash(signer.hash);
  let seq = 1;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tbsBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    await sink(seq++, pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
    pending = [];
    pendingBytes = 0;
  };
  const emitTbs = async (...chunks: Buffer[]) => {
    for (const chunk of chunks) {
      hash.update(chunk);
      tbsBytes += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
    if (pendingBytes >= PART_BYTES) await flush();
  };

  await emitTbs(tbsHeader, ...headerParts, revokedHeader);
  let entries = 0;
  let written = 0;
  for await (const batch of source) {
    const chunk = encodeEntries(batch, thisUpdate);
    entries += batch.length;
    written += chunk.length;
    if (entries > expected.count || written > expected.bytes) break;
    await emitTbs(chunk);
  }
  if (entries !== expected.count || written !== expected.bytes) {
    throw new CrlSourceChangedError(`the revoked entries changed while the CRL was built (counted ${expected.count}, streamed ${entries} or more); building it again`);
  }
  await emitTbs(extensionsDer);
  if (tbsBytes !== tbsHeader.length + bodyLength) throw new Error(`CRL assembly error: wrote ${tbsBytes} of ${tbsHeader.length + bodyLength} TBS bytes`);

  const digest = hash.digest();
  const signature = await signer.signDigest(digest);
  const trailer = Buffer.concat([algorithm, tlv(0x03, Buffer.from([0]), signature)]);
  pending.push(trailer);
  pendingBytes += trailer.length;
  await flush();
  const outerHeader = Buffer.concat([Buffer.from([0x30]), derLength(tbsBytes + trailer.length)]);
  await sink(0, outerHeader);
  // Content-derived like a hash of the whole DER, without reading the streamed parts back.
  const etag = createHash("sha256").update(outerHeader).update(digest).update(trailer).digest("base64url").slice(0, 32);
  return { entries, etag: `"${etag}"` };
}
