// URI SANs are checked against RFC 3986 and must already be in its normal form (§6.2.2),
// so that a policy's prefix comparison on the text is a comparison of what the URI means:
// a '..' segment, '%2e%2e' or 'PROD.example' would otherwise let one spelling escape a
// prefix that another spelling is held to. SPIFFE IDs get the SPIFFE spec's stricter rules.
// Every expression here is linear: character classes that cannot overlap, no nesting.
import { isIP } from "node:net";

// RFC 3986 appendix B: the split into scheme, authority, path, query and fragment
const URI_PARTS = /^([^:/?#]+):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s;
const SCHEME = /^[a-z][a-z0-9+.-]*$/;
// unreserved / pct-encoded / sub-delims, plus what each component adds
const USERINFO = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;
const PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;
const QUERY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;
const PERCENT = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const PORT = /^[0-9]*$/;

// SPIFFE ID spec §2: trust domain and path segment characters; no percent-encoding at all
const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
export const MAX_URI_LENGTH = 2048;

/** Why `value` is not an RFC 3986 URI in normal form, or undefined. `hostProblem` judges a reg-name host. */
export function uriProblem(value: string, hostProblem: (host: string) => string | undefined): string | undefined {
  if (value.length > MAX_URI_LENGTH) return `is longer than ${MAX_URI_LENGTH} characters`;
  const parts = URI_PARTS.exec(value);
  if (!parts) return "is not an absolute URI (scheme:rest)";
  const [, scheme, authority, path, query, fragment] = parts as unknown as [string, string, string | undefined, string, string | undefined, string | undefined];
  if (!SCHEME.test(scheme)) return /^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme) ? "has an upper-case scheme; write it in lower case" : "has a malformed scheme";
  if (authority === undefined && !path) return "has a scheme but nothing after it";
  if (authority !== undefined) {
    const problem = authorityProblem(authority, hostProblem);
    if (problem) return problem;
  }
  if (!PATH.test(path)) return "has a character a URI path may not hold (RFC 3986; percent-encode it)";
  if (query !== undefined && !QUERY.test(query)) return "has a character a URI query may not hold (RFC 3986; percent-encode it)";
  if (fragment !== undefined && !QUERY.test(fragment)) return "has a character a URI fragment may not hold (RFC 3986; percent-encode it)";
  for (const [, hex] of value.matchAll(PERCENT)) {
    if (hex !== hex!.toUpperCase()) return `has lower-case percent-encoding '%${hex}'; write '%${hex!.toUpperCase()}'`;
    const char = String.fromCharCode(parseInt(hex!, 16));
    if (UNRESERVED.test(char)) return `percent-encodes '${char}' ('%${hex}'), which must be written as itself`;
  }
  if (path.split("/").some((segment) => segment === "." || segment === "..")) return "has a '.' or '..' path segment";
  return undefined;
}

function authorityProblem(authority: string, hostProblem: (host: string) => string | undefined): string | undefined {
  const at = authority.lastIndexOf("@");
  if (at !== -1 && !USERINFO.test(authority.slice(0, at))) return "has a malformed user name";
  const hostPort = authority.slice(at + 1);
  let host: string;
  let port: string | undefined;
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close === -1 || isIP(hostPort.slice(1, close)) !== 6) return "has a bracketed host that is not an IPv6 address";
    host = hostPort.slice(0, close + 1);
    const rest = hostPort.slice(close + 1);
    if (rest && !rest.startsWith(":")) return "has characters after its IPv6 address";
    port = rest ? rest.slice(1) : undefined;
  } else {
    const colon = hostPort.indexOf(":");
    host = colon === -1 ? hostPort : hostPort.slice(0, colon);
    port = colon === -1 ? undefined : hostPort.slice(colon + 1);
    // RFC 5280 §4.2.1.6: an authority names a fully qualified domain name or an IP address
    if (!host) return "has an empty host";
    if (isIP(host) !== 4) {
      if (host !== host.toLowerCase()) return "has an upper-case host; write it in lower case";
      const problem = hostProblem(host);
      if (problem) return `has a host that ${problem}`;
    }
  }
  if (port !== undefined && !PORT.test(port)) return "has a port that is not a number";
  return undefined;
}

/**
 * Why a normal-form URI cannot be judged by a path prefix, or undefined. Servers disagree
 * on what an encoded '/', '\\' or NUL, an empty segment, or a ';' path parameter on a dot
 * segment ('..;' in Tomcat) mean, so `https://svc/api/..;/admin` or `…/api/a%2F..%2Fadmin`
 * may reach a path outside the prefix on some server; a fragment says nothing about the
 * path. Such URIs are never taken to be under a prefix.
 */
export function prefixMatchProblem(value: string): string | undefined {
  if (/%(?:2F|5C|00)/i.test(value)) return "percent-encodes '/', '\\' or NUL, which servers read differently";
  if (value.includes("#")) return "has a fragment";
  const parts = URI_PARTS.exec(value);
  const path = parts?.[3] ?? "";
  const segments = path.split("/").slice(1);
  if (segments.slice(0, -1).some((segment) => segment === "")) return "has an empty path segment ('//')";
  if (segments.some((segment) => /^\.\.?;/.test(segment))) return "has a dot segment with a ';' parameter ('..;')";
  return undefined;
}

/** The SPIFFE ID rules (spiffe/spiffe standards, SPIFFE-ID.md §2) for a URI that is already valid RFC 3986. */
export function spiffeIdProblem(value: string): string | undefined {
  if (!value.startsWith("spiffe://")) return "is not of the form spiffe://trust-domain/path";
  const rest = value.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  if (!SPIFFE_TRUST_DOMAIN.test(trustDomain)) return "has a trust domain that is not lower-case letters, digits, '.', '-' and '_' (no port, user or percent-encoding)";
  if (slash === -1) return undefined;
  const path = rest.slice(slash + 1);
  if (path.endsWith("/")) return "ends in '/'";
  for (const segment of path.split("/")) {
    if (!segment) return "has an empty path segment";
    if (segment === "." || segment === "..") return "has a '.' or '..' path segment";
    if (!SPIFFE_SEGMENT.test(segment)) return "has a path segment that is not letters, digits, '.', '-' and '_' (no query, fragment or percent-encoding)";
  }
  return undefined;
}
