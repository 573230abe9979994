import { isIP } from "node:net";

/** The 4 or 16 bytes of an IP address in text form. */
export function ipBytes(ip: string): Buffer {
  const version = isIP(ip);
  if (version === 4) return Buffer.from(ip.split(".").map(Number));
  if (version !== 6) throw new Error(`not an IP address: ${ip.slice(0, 64)}`);
  let text = ip.toLowerCase().replace(/%.*$/, "");
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const b = v4[1].split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const hextets = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  const bytes = Buffer.alloc(16);
  hextets.forEach((h, i) => bytes.writeUInt16BE(Number.parseInt(h, 16), i * 2));
  return bytes;
}

/** RFC 8738 §6: the reverse-mapping name of an address, used as TLS SNI for tls-alpn-01 on IP identifiers. */
export function reverseName(ip: string): string {
  const bytes = ipBytes(ip);
  if (bytes.length === 4) return `${[...bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles = [...bytes].flatMap((b) => [(b >> 4).toString(16), (b & 15).toString(16)]);
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}
