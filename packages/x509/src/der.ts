import { AsnConvert } from "@peculiar/asn1-schema";

export { AsnConvert };

export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

const DASHES = "-----";
const MAX_LABEL = 64;
const isLabelChar = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20; // A-Z 0-9 space

/** The `-----BEGIN X-----` or `-----END X-----` line starting at `at`, if there is one. */
function markerAt(text: string, at: number): { kind: "BEGIN" | "END"; label: string; end: number } | undefined {
  const kind = text.startsWith("BEGIN ", at + DASHES.length) ? "BEGIN" : text.startsWith("END ", at + DASHES.length) ? "END" : undefined;
  if (!kind) return undefined;
  const labelStart = at + DASHES.length + kind.length + 1;
  let i = labelStart;
  while (i < text.length && i - labelStart < MAX_LABEL && isLabelChar(text.charCodeAt(i))) i++;
  if (i === labelStart || !text.startsWith(DASHES, i)) return undefined;
  return { kind, label: text.slice(labelStart, i), end: i + DASHES.length };
}

/**
 * Every PEM block with the given label(s), decoded, in order. One forward pass over the
 * text: each position is looked at a bounded number of times, so hostile input (thousands
 * of BEGIN lines without an END) costs linear time. A backtracking regular expression
 * here rescanned the rest of the text from every BEGIN.
 */
export function pemBlocks(text: string, labels: string[]): Buffer[] {
  const blocks: Buffer[] = [];
  let open: { label: string; bodyStart: number } | undefined;
  for (let at = text.indexOf(DASHES); at !== -1; ) {
    const marker = markerAt(text, at);
    if (!marker) {
      at = text.indexOf(DASHES, at + 1);
      continue;
    }
    if (marker.kind === "BEGIN") {
      if (open) throw new RangeError(`PEM block ${open.label} has no END line before the next BEGIN`);
      open = { label: marker.label, bodyStart: marker.end };
    } else {
      if (!open) throw new RangeError(`PEM END line for ${marker.label} has no BEGIN line`);
      if (marker.label !== open.label) throw new RangeError(`PEM block ${open.label} ends with an END line for ${marker.label}`);
      if (labels.includes(open.label)) blocks.push(pemBody(open.label, text.slice(open.bodyStart, at)));
      open = undefined;
    }
    at = text.indexOf(DASHES, marker.end);
  }
  if (open) throw new RangeError(`PEM block ${open.label} has no END line`);
  return blocks;
}

function pemBody(label: string, text: string): Buffer {
  const body = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new RangeError(`PEM block ${label} is not valid base64`);
  return Buffer.from(body, "base64");
}

export const serialize = (value: unknown): Buffer => Buffer.from(AsnConvert.serialize(value));
