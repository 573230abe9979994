// Name patterns a provisioner is scoped to. One pattern per string, typed like a SAN so an
// operator reads them the way they read a certificate:
//
//   DNS:api.example.com        exactly that name
//   DNS:*.example.com          one label under example.com (and the wildcard name itself)
//   DNS:.example.com           any name under example.com, at any depth
//   IP:10.1.2.3  IP:10.0.0.0/8  IP:fd00::/8
//   URI:spiffe://prod.example/ns/payments/sa/api     exactly that URI
//   URI:spiffe://prod.example/ns/payments/*          anything starting with the part before '*'
//   email:alice@example.com    that mailbox
//   email:@example.com         any mailbox at example.com
//   email:@.example.com        any mailbox at a subdomain of example.com
//   CN:batch-runner  CN:batch-*   a subject CN of letters, digits, '-' and '_' that no client
//                                 could read as a host name or address
import { BlockList, isIP } from "node:net";
import { CaError, prefixMatchProblem, sanProblem, type San } from "@pki/x509";

type SanType = San["type"];

export type PatternType = SanType | "CN";

/** A compiled pattern: the text the operator wrote and a test for one name of its type. */
export interface NamePattern {
  text: string;
  type: PatternType;
  matches(value: string): boolean;
}

const invalid = (text: string, why: string) => new CaError("bad_request", `name pattern '${text}' ${why}`);

export function compileNamePattern(input: string): NamePattern {
  const text = input.trim();
  const colon = text.indexOf(":");
  const type = text.slice(0, colon);
  const body = text.slice(colon + 1);
  if (colon < 1 || !body) throw invalid(text, "must look like DNS:<name>, IP:<address or CIDR>, URI:<uri>, email:<address or @domain> or CN:<name>");
  switch (type) {
    case "DNS":
      return dnsPattern(text, body.toLowerCase());
    case "IP":
      return ipPattern(text, body);
    case "URI":
      return uriPattern(text, body);
    case "email":
      return emailPattern(text, body.toLowerCase());
    case "CN":
      return cnPattern(text, body);
    default:
      throw invalid(text, `has unknown type '${type}'; use DNS, IP, URI, email or CN`);
  }
}

function assertDnsName(text: string, name: string): void {
  const problem = sanProblem({ type: "DNS", value: name });
  if (problem) throw invalid(text, `is not usable: ${problem.replace(/^SAN /, "")}`);
}

function dnsPattern(text: string, body: string): NamePattern {
  if (body.slice(body.startsWith("*.") ? 2 : 0).includes("*")) throw invalid(text, "may only use '*' as its whole first label, as in DNS:*.example.com");
  if (body.startsWith("*.")) {
    const parent = body.slice(2);
    assertDnsName(text, parent);
    // exactly one label (or the wildcard label itself) in front of the parent
    return { text, type: "DNS", matches: (v) => v.endsWith(`.${parent}`) && !v.slice(0, -parent.length - 1).includes(".") };
  }
  if (body.startsWith(".")) {
    const parent = body.slice(1);
    assertDnsName(text, parent);
    return { text, type: "DNS", matches: (v) => v.endsWith(body) && v.length > body.length };
  }
  assertDnsName(text, body);
  return { text, type: "DNS", matches: (v) => v === body };
}

function ipPattern(text: string, body: string): NamePattern {
  const [address, prefixText, extra] = body.split("/");
  const family = isIP(address ?? "");
  if (!family || extra !== undefined) throw invalid(text, "needs an IPv4 or IPv6 address, optionally with /prefix-length");
  const maxPrefix = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    throw invalid(text, `has a prefix length that is not 0 to ${maxPrefix}`);
  }
  const range = new BlockList();
  range.addSubnet(address!, prefix, family === 4 ? "ipv4" : "ipv6");
  return { text, type: "IP", matches: (v) => isIP(v) === family && range.check(v, family === 4 ? "ipv4" : "ipv6") };
}

function uriPattern(text: string, body: string): NamePattern {
  const star = body.indexOf("*");
  if (star !== -1 && star !== body.length - 1) throw invalid(text, "may only use '*' at its very end, as a prefix match");
  const fixed = star === -1 ? body : body.slice(0, -1);
  // A prefix must end at a path boundary, or 'spiffe://prod.example/ns/pay*' would grant '/ns/payroll'.
  if (star !== -1 && !fixed.endsWith("/")) throw invalid(text, "must end in '/*' when it is a prefix, so it cannot match a longer sibling path");
  if (star !== -1 && /[?#]/.test(fixed)) throw invalid(text, "may not put its '*' in a query or fragment; a prefix is a path");
  // The URI the pattern names (for a prefix: its path without the final '/') must be one
  // a CSR could carry, in normal form: a pattern with '..' or '%2E' in it means nothing.
  const problem = sanProblem({ type: "URI", value: star === -1 ? fixed : fixed.slice(0, -1) });
  if (problem) throw invalid(text, `is not usable: ${problem}`);
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]/.test(fixed)) throw invalid(text, "must name a host (e.g. URI:spiffe://prod.example/ns/payments/*)");
  const confusing = star === -1 ? undefined : prefixMatchProblem(fixed);
  if (confusing) throw invalid(text, `is not usable as a prefix: it ${confusing}`);
  // Names reach here checked by CSR intake, renewal re-reads stored ones: a URI that is not
  // in normal form (a '..' segment, '%2E') is never taken to be under a prefix.
  const normal = (v: string) => sanProblem({ type: "URI", value: v }) === undefined && prefixMatchProblem(v) === undefined;
  if (star === -1) return { text, type: "URI", matches: (v) => v === fixed };
  return { text, type: "URI", matches: (v) => v.startsWith(fixed) && v.length > fixed.length && normal(v) };
}

function emailPattern(text: string, body: string): NamePattern {
  if (body.startsWith("@.")) {
    const parent = body.slice(2);
    assertDnsName(text, parent);
    return { text, type: "email", matches: (v) => domainOf(v).endsWith(`.${parent}`) };
  }
  if (body.startsWith("@")) {
    const domain = body.slice(1);
    assertDnsName(text, domain);
    return { text, type: "email", matches: (v) => domainOf(v) === domain };
  }
  if (sanProblem({ type: "email", value: body })) throw invalid(text, "is not an e-mail address, @domain or @.domain");
  return { text, type: "email", matches: (v) => v.toLowerCase() === body };
}

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

// A TLS client that finds no DNS SAN may compare the host it wanted with the CN (OpenSSL
// does), and resolvers read many spellings as a host or address: a trailing dot, '。' and
// other Unicode dots, '0x7f000001', '2130706433'. So a CN that only a CN: pattern grants
// must not be readable as either: letters, digits, '-' and '_', and not a number.
const GRANTABLE_CN = /^[A-Za-z0-9_-]{1,64}$/;
const NUMBER = /^(?:[0-9]+|0x[0-9a-f]*)$/i;

/** Why a CN may not be granted by a CN: pattern, or undefined when it may. */
export function cnGrantProblem(cn: string): string | undefined {
  if (!GRANTABLE_CN.test(cn)) return "a CN granted by a CN: pattern may hold only 1 to 64 ASCII letters, digits, '-' and '_', so that no TLS client reads it as a host name";
  if (NUMBER.test(cn)) return "a CN granted by a CN: pattern may not be a number, which resolvers read as an IPv4 address";
  return undefined;
}

function cnPattern(text: string, body: string): NamePattern {
  const star = body.indexOf("*");
  if (star !== -1 && star !== body.length - 1) throw invalid(text, "may only use '*' at its very end, as a prefix match");
  if (body.length > 64) throw invalid(text, "is longer than a CN may be (64 characters)");
  const prefix = star === -1 ? body : body.slice(0, -1);
  const problem = star === -1 ? cnGrantProblem(body) : prefix && !GRANTABLE_CN.test(prefix) ? cnGrantProblem(prefix) : undefined;
  if (problem) throw invalid(text, `is not usable: ${problem}`);
  if (star === -1) return { text, type: "CN", matches: (v) => v === body };
  return { text, type: "CN", matches: (v) => v.startsWith(prefix) && v.length > prefix.length && cnGrantProblem(v) === undefined };
}

/** True when some pattern of the SAN's type matches it. */
export function sanAllowed(patterns: readonly NamePattern[], san: San): boolean {
  const value = san.type === "DNS" ? san.value.toLowerCase() : san.value;
  return patterns.some((p) => p.type === san.type && p.matches(value));
}
