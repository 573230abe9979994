import { isIP } from "node:net";
import { sanProblem, type San } from "@pki/x509";
import { ipBytes } from "@pki/challenges";
import type { AcmeIdentifier } from "@pki/db";
import { AcmeProblem, ACME_ERROR, type Subproblem } from "./problems.ts";

export const MAX_IDENTIFIERS = 100;
const MAX_IDENTIFIER_CHARS = 253;

/** The IP address in the one textual form certificates and CSRs are compared in. */
export function canonicalIp(value: string): string | undefined {
  // isIP accepts an IPv6 zone ID (fe80::1%eth0): it names an interface of the requester's host, never an address of a certificate.
  if (value.includes("%")) return undefined;
  const version = isIP(value);
  if (version === 4) return value.split(".").every((octet) => String(Number(octet)) === octet) ? value : undefined;
  if (version === 6) return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  return undefined;
}

/** The SAN an order identifier becomes in the certificate. */
export const sanOf = (identifier: AcmeIdentifier): San => (identifier.type === "ip" ? { type: "IP", value: identifier.value } : { type: "DNS", value: identifier.value });

/**
 * Checks and normalises newOrder identifiers (RFC 8555 §7.4, RFC 8738 for addresses): DNS
 * names lower-cased, a wildcard only as the whole leftmost label, IP addresses in their
 * canonical form. Every bad identifier is a subproblem of one malformed/unsupported answer.
 */
export function normaliseIdentifiers(raw: unknown): AcmeIdentifier[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new AcmeProblem("malformed", "newOrder needs a non-empty 'identifiers' array");
  if (raw.length > MAX_IDENTIFIERS) throw new AcmeProblem("rejectedIdentifier", `an order may name at most ${MAX_IDENTIFIERS} identifiers (got ${raw.length})`);
  const subproblems: Subproblem[] = [];
  const out = new Map<string, AcmeIdentifier>();
  for (const item of raw) {
    const type = (item as { type?: unknown })?.type;
    const value = (item as { value?: unknown })?.value;
    const shown = { type: String(type).slice(0, 16), value: String(value).slice(0, MAX_IDENTIFIER_CHARS) };
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_IDENTIFIER_CHARS) {
      subproblems.push({ type: `${ACME_ERROR}malformed`, detail: `identifier value must be a string of 1 to ${MAX_IDENTIFIER_CHARS} characters`, identifier: shown });
      continue;
    }
    if (type === "ip") {
      const ip = canonicalIp(value);
      if (value.includes("%"))
        subproblems.push({
          type: `${ACME_ERROR}rejectedIdentifier`,
          detail: `'${shown.value}' has an IPv6 zone ID: it names an interface of one host, and certificates hold addresses without one`,
          identifier: shown,
        });
      else if (!ip) subproblems.push({ type: `${ACME_ERROR}malformed`, detail: `'${shown.value}' is not an IP address`, identifier: shown });
      else out.set(`ip:${ip}`, { type: "ip", value: ip });
    } else if (type === "dns") {
      const name = value.toLowerCase();
      if (isIP(name)) {
        subproblems.push({ type: `${ACME_ERROR}malformed`, detail: `'${name}' is an IP address; use an identifier of type "ip" (RFC 8738)`, identifier: shown });
        continue;
      }
      const base = name.startsWith("*.") ? name.slice(2) : name;
      const problem = base.includes("*") ? "a wildcard must be the whole leftmost label ('*.example.com')" : sanProblem({ type: "DNS", value: base });
      if (problem) subproblems.push({ type: `${ACME_ERROR}rejectedIdentifier`, detail: problem, identifier: shown });
      else out.set(`dns:${name}`, { type: "dns", value: name });
    } else {
      subproblems.push({ type: `${ACME_ERROR}unsupportedIdentifier`, detail: `identifier type '${shown.type}' is not supported (dns, ip)`, identifier: shown });
    }
  }
  if (subproblems.length) {
    const first = subproblems[0] as Subproblem;
    const type = first.type.slice(ACME_ERROR.length) as "malformed";
    throw new AcmeProblem(subproblems.length === 1 ? type : "malformed", subproblems.length === 1 ? first.detail : `${subproblems.length} identifiers were refused; see subproblems`, {
      subproblems,
    });
  }
  return [...out.values()];
}

/**
 * The network a request came from, as the new-account limits count it: an IPv4 address
 * (an IPv4-mapped IPv6 one as IPv4), or the /64 of an IPv6 address, which one subscriber
 * usually holds whole.
 */
export function sourceNetwork(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return mapped;
  if (isIP(address) !== 6) return address.slice(0, 64);
  const bytes = ipBytes(address);
  const hextets = [0, 2, 4, 6].map((i) => bytes.readUInt16BE(i).toString(16));
  return `${hextets.join(":")}::/64`;
}
