import { isIP } from "node:net";
import { domainToUnicode } from "node:url";

/** A subject alternative name, in the form the inventory and error messages use: "DNS:api.example". */
export type SanType = "DNS" | "IP" | "URI" | "email";
export interface San {
  type: SanType;
  value: string;
}

export const formatSan = (san: San): string => `${san.type}:${san.value}`;

export function parseSan(text: string): San {
  const colon = text.indexOf(":");
  const type = text.slice(0, colon) as SanType;
  if (colon < 1 || !["DNS", "IP", "URI", "email"].includes(type)) throw new RangeError(`'${text}' is not a SAN (DNS:, IP:, URI: or email:)`);
  return { type, value: text.slice(colon + 1) };
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** An IDN label that mixes Latin letters with look-alike scripts, e.g. "аpple" with a Cyrillic а. */
function mixesScripts(label: string): boolean {
  const latin = /\p{Script=Latin}/u.test(label);
  return latin && /[\p{Script=Cyrillic}\p{Script=Greek}]/u.test(label);
}

/** Why a SAN value is malformed, or undefined when it is fine. Policy decides whether it is allowed. */
export function sanProblem(san: San): string | undefined {
  const v = san.value;
  if (/[\u0000-\u001f\u007f]/.test(v)) return `SAN ${san.type} contains control characters`;
  switch (san.type) {
    case "DNS": {
      if (v.length > 253) return `SAN DNS:${v.slice(0, 40)}… is longer than 253 characters`;
      if (v !== v.toLowerCase()) return `SAN DNS:${v} must be lower case`;
      const labels = v.split(".");
      if (labels.length < 2) return `SAN DNS:${v} is not a fully qualified domain name`;
      if (labels[0] === "*" && labels.length < 3) return `SAN DNS:${v} is a wildcard over a whole top-level domain`;
      for (const [i, label] of labels.entries()) {
        if (i === 0 && label === "*") continue;
        if (!DNS_LABEL.test(label)) return `SAN DNS:${v} has an invalid label '${label}' (letters, digits and hyphens only; IDNs in punycode)`;
        if (label.startsWith("xn--")) {
          const unicode = domainToUnicode(label);
          if (!unicode) return `SAN DNS:${v} has a label '${label}' that is not valid punycode`;
          if (mixesScripts(unicode)) return `SAN DNS:${v} mixes Latin with Cyrillic or Greek letters in one label (a homograph)`;
        }
      }
      return undefined;
    }
    case "IP":
      if (v.includes("%")) return `SAN IP:${v} carries a zone index, which has no meaning in a certificate`;
      return isIP(v) ? undefined : `SAN IP:${v} is not an IPv4 or IPv6 address`;
    case "URI": {
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        return `SAN URI:${v} is not an absolute URI`;
      }
      if (url.protocol === "spiffe:" && (!url.hostname || url.search || url.hash || url.port || url.username)) return `SAN URI:${v} is not a valid SPIFFE ID`;
      return undefined;
    }
    case "email":
      return /^[^@\s]+@[a-z0-9.-]+\.[a-z]{2,}$/i.test(v) ? undefined : `SAN email:${v} is not an e-mail address`;
  }
}
