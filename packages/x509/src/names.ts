import { isIP } from "node:net";
import { domainToUnicode } from "node:url";
import { spiffeIdProblem, uriProblem } from "./uri.ts";

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

// RFC 5321 §4.1.2 Dot-string, the mailbox form RFC 5280 §4.2.1.6 asks of an rfc822Name.
// Quoted local parts are legal but are not issued: relying parties disagree on them.
const MAILBOX_LOCAL_PART = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** What is wrong with a DNS name, phrased to follow its text, or undefined when it is fine. */
function dnsNameProblem(v: string): string | undefined {
  if (v.length > 253) return "is longer than 253 characters";
  if (v !== v.toLowerCase()) return "must be lower case";
  const labels = v.split(".");
  if (labels.length < 2) return "is not a fully qualified domain name";
  if (labels[0] === "*" && labels.length < 3) return "is a wildcard over a whole top-level domain";
  for (const [i, label] of labels.entries()) {
    if (i === 0 && label === "*") continue;
    if (!DNS_LABEL.test(label)) return `has an invalid label '${label}' (letters, digits and hyphens only; IDNs in punycode)`;
    if (label.startsWith("xn--")) {
      const unicode = domainToUnicode(label);
      if (!unicode) return `has a label '${label}' that is not valid punycode`;
      if (mixesScripts(unicode)) return "mixes Latin with Cyrillic or Greek letters in one label (a homograph)";
    }
  }
  return undefined;
}

/** A host inside a URI or mailbox: a DNS name without a wildcard. */
const hostNameProblem = (host: string) => (host.startsWith("*.") ? "is a wildcard" : dnsNameProblem(host));

/** Long values are cut in messages: the message is logged and returned, the value is client input. */
const shown = (v: string) => (v.length > 100 ? `${v.slice(0, 100)}…` : v);

/** Why a SAN value is malformed, or undefined when it is fine. Policy decides whether it is allowed. */
export function sanProblem(san: San): string | undefined {
  const v = san.value;
  if (/[\u0000-\u001f\u007f]/.test(v)) return `SAN ${san.type} contains control characters`;
  // dNSName, rfc822Name and uniformResourceIdentifier are IA5Strings (RFC 5280 §4.2.1.6)
  if (!PRINTABLE_ASCII.test(v)) return `SAN ${san.type}:${shown(v)} holds characters outside ASCII; IA5String names must be ASCII (IDNs in punycode, URIs percent-encoded)`;
  switch (san.type) {
    case "DNS": {
      const problem = dnsNameProblem(v);
      return problem && `SAN DNS:${v.length > 253 ? `${v.slice(0, 40)}…` : v} ${problem}`;
    }
    case "IP":
      if (v.includes("%")) return `SAN IP:${v} carries a zone index, which has no meaning in a certificate`;
      return isIP(v) ? undefined : `SAN IP:${v} is not an IPv4 or IPv6 address`;
    case "URI": {
      const spiffe = v.toLowerCase().startsWith("spiffe:");
      const problem = uriProblem(v, spiffe ? () => undefined : hostNameProblem) ?? (spiffe ? spiffeIdProblem(v) : undefined);
      return problem && `SAN URI:${shown(v)} ${problem}${spiffe ? " (not a valid SPIFFE ID)" : ""}`;
    }
    case "email": {
      const problem = mailboxProblem(v);
      return problem && `SAN email:${shown(v)} is not an e-mail address: ${problem}`;
    }
  }
}

function mailboxProblem(v: string): string | undefined {
  const at = v.lastIndexOf("@");
  if (at < 1) return "it needs a local part, '@' and a domain";
  if (v.length > 254) return "it is longer than 254 characters";
  const local = v.slice(0, at);
  if (local.length > 64) return "its local part is longer than 64 characters";
  if (!MAILBOX_LOCAL_PART.test(local)) return "its local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{|}~ (no quoted local parts)";
  const domain = v.slice(at + 1).toLowerCase();
  const problem = hostNameProblem(domain);
  return problem && `its domain ${problem}`;
}
