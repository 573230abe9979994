import { AsnConvert } from "@peculiar/asn1-schema";

export { AsnConvert };

export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** Every PEM block with the given label(s), decoded, in order. */
export function pemBlocks(text: string, labels: string[]): Buffer[] {
  const blocks: Buffer[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const match of text.matchAll(re)) {
    if (!labels.includes(match[1]!)) continue;
    const body = match[2]!.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new RangeError(`PEM block ${match[1]} is not valid base64`);
    blocks.push(Buffer.from(body, "base64"));
  }
  return blocks;
}

export const serialize = (value: unknown): Buffer => Buffer.from(AsnConvert.serialize(value));
