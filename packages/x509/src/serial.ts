// Serials as people paste them, turned into the one form the inventory keys: lowercase hex
// of the DER INTEGER contents, no separators. `openssl x509 -serial` prints upper case (and
// drops the 00 byte DER puts before a high bit); browsers show colon-separated byte pairs.

/** RFC 5280: at most 20 octets of serial. */
const MAX_SERIAL_OCTETS = 20;
const PLAIN_HEX = /^[0-9a-f]+$/i;
const BYTE_PAIRS = /^[0-9a-f]{2}(:[0-9a-f]{2})*$/i;

/** The hex digits of `input` when it is plain hex or colon-separated byte pairs. */
function hexDigits(input: string): string | undefined {
  const text = input.trim();
  if (PLAIN_HEX.test(text)) return text.toLowerCase();
  if (BYTE_PAIRS.test(text)) return text.replaceAll(":", "").toLowerCase();
  return undefined;
}

/**
 * The inventory's form of a serial typed in any case, plain or colon-separated; undefined
 * when it is not a serial. As DER encodes the INTEGER: whole bytes, no redundant leading 00
 * bytes, and a 00 byte before a first byte with its high bit set (serials are positive).
 */
export function canonicalSerial(input: string): string | undefined {
  let hex = hexDigits(input);
  if (hex === undefined) return undefined;
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.startsWith("00") && hex.length > 2 && Number.parseInt(hex.slice(2, 3), 16) < 8) hex = hex.slice(2);
  if (Number.parseInt(hex.slice(0, 1), 16) >= 8) hex = `00${hex}`;
  return hex.length / 2 <= MAX_SERIAL_OCTETS ? hex : undefined;
}

/**
 * The start of a serial as the inventory stores it, for a prefix search: lowercase, no
 * colons; a first byte with its high bit set gets the 00 byte the inventory stores before
 * it. Undefined when it is not the start of a serial.
 */
export function serialPrefix(input: string): string | undefined {
  const text = input.trim().replace(/:$/, "");
  let hex = hexDigits(text) ?? (/^([0-9a-f]{2}:)+[0-9a-f]$/i.test(text) ? text.replaceAll(":", "").toLowerCase() : undefined);
  if (hex === undefined) return undefined;
  if (hex.length >= 2 && Number.parseInt(hex.slice(0, 1), 16) >= 8) hex = `00${hex}`;
  return hex.length <= MAX_SERIAL_OCTETS * 2 ? hex : undefined;
}
