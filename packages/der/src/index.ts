// A minimal DER reader and writer for the hot paths: building a leaf's to-be-signed
// certificate, linting it, and reading public keys. Hand-written because profiling showed
// the general ASN.1 libraries (asn1js under @peculiar/asn1-schema) spending ~0.5 ms to
// build and ~1 ms to parse one leaf; these walk or concatenate bytes directly. The
// general libraries stay in use everywhere speed does not matter.

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** One tag-length-value: offsets into the buffer it was read from. */
export interface Tlv {
  tag: number;
  /** offset of the tag byte */
  start: number;
  /** offset of the first content byte */
  contentStart: number;
  /** offset just past the last content byte */
  end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads the TLV at `offset`; DER only (definite, minimal lengths), bounded by `limit`. */
export function readTlv(buf: Uint8Array, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError("truncated DER");
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used here");
  let length = buf[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError("indefinite length is not DER");
    if (count > 4 || contentStart + count > limit) throw new DerError("DER length too large");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[contentStart + i]!;
    if (length < 0x80 || buf[contentStart] === 0) throw new DerError("DER length is not minimal");
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError("DER value runs past its container");
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed value, which must fill it exactly. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const list: Tlv[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readTlv(buf, offset, parent.end);
    list.push(child);
    offset = child.end;
  }
  return list;
}

export const contents = (buf: Uint8Array, tlv: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart);
export const whole = (buf: Uint8Array, tlv: Tlv): Buffer => Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);

export function expectTag(tlv: Tlv, tag: number, what: string): Tlv {
  if (tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
  return tlv;
}

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError("empty OID");
  const parts: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), Z only, as DER demands. */
export function decodeTime(buf: Uint8Array, tlv: Tlv): Date {
  const text = contents(buf, tlv).toString("latin1");
  const m = tlv.tag === TAG.UTC_TIME ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text) : tlv.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text) : null;
  if (!m) throw new DerError(`malformed time '${text}'`);
  let year = Number(m[1]);
  if (tlv.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

// ---- writer ----

/** The DER length octets for a value of `length` bytes. */
export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Bytes the length octets of `length` take. */
function lengthSize(length: number): number {
  if (length < 0x80) return 1;
  let size = 1;
  for (let n = length; n > 0; n = Math.floor(n / 256)) size++;
  return size;
}

/**
 * One TLV around `parts`, written into a single allocation. Nested encoders (an OCSP
 * response is five levels around a ~1 KB body, a certificate as many) copy each level's
 * bytes once: concatenating the parts and then the header copied them twice, which a
 * profile of OCSP pre-signing put, with the garbage it made, at a fifth of the event loop.
 */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const headerSize = 1 + lengthSize(length);
  const out = Buffer.allocUnsafe(headerSize + length);
  out[0] = tag;
  if (length < 0x80) out[1] = length;
  else {
    out[1] = 0x80 | (headerSize - 2);
    for (let n = length, at = headerSize - 1; at >= 2; n = Math.floor(n / 256), at--) out[at] = n & 0xff;
  }
  let at = headerSize;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]) => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]) => tlv(TAG.SET, ...parts);
export const octetString = (bytes: Uint8Array) => tlv(TAG.OCTET_STRING, bytes);
export const bitString = (bytes: Uint8Array, unusedBits = 0) => tlv(TAG.BIT_STRING, Buffer.from([unusedBits]), bytes);
export const utf8String = (text: string) => tlv(TAG.UTF8_STRING, Buffer.from(text, "utf8"));
export const ia5String = (text: string) => tlv(TAG.IA5_STRING, Buffer.from(text, "latin1"));
export const booleanTrue = Buffer.from([TAG.BOOLEAN, 1, 0xff]);
/** context-specific [n]: constructed (explicit tagging) or primitive (implicit) */
export const context = (n: number, constructed: boolean, ...parts: Uint8Array[]) => tlv(0x80 | (constructed ? 0x20 : 0) | n, ...parts);

/** A non-negative integer from its big-endian magnitude, minimally encoded. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  return tlv(TAG.INTEGER, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export const smallInteger = (n: number) =>
  unsignedInteger(
    Buffer.from(
      n
        .toString(16)
        .padStart(2, "0")
        .replace(/^(.(..)*)$/, "0$1"),
      "hex",
    ),
  );

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [];
  const push = (value: number) => {
    const chunk = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  const encoded = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
/** GeneralizedTime in whole seconds, Z (what OCSP's times are: RFC 6960 §4.2.1). */
export function generalizedTime(date: Date): Buffer {
  const text = `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(text, "latin1"));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, seconds, Z. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return y < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${pad(y % 100)}${rest}`, "latin1")) : tlv(TAG.GENERALIZED_TIME, Buffer.from(`${pad(y, 4)}${rest}`, "latin1"));
}
