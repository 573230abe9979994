import { isIP } from "node:net";
import type { ChallengeSettings } from "./types.ts";

export const MAX_REDIRECTS = 10;

/**
 * The ports an http-01 validation may be redirected to: 80 and 443, plus the configured
 * validation ports when they differ from those (a CA under test validates on loopback ports).
 */
export function allowedRedirectPorts(settings: Pick<ChallengeSettings, "http01Port" | "tlsAlpn01Port">): Set<number> {
  return new Set([80, 443, settings.http01Port, settings.tlsAlpn01Port]);
}

/** The port a URL connects to, its scheme's default when it names none. */
export function effectivePort(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** A URL's host name without the brackets WHATWG URL keeps around IPv6 literals. */
export function bareHostname(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

export type RedirectDecision = { ok: true; url: URL } | { ok: false; reason: string };

/** Whose challenge is being fetched: a redirect must stay on it. */
export interface RedirectScope {
  /** the challenge token: a redirect must keep `/.well-known/acme-challenge/<token>` as the end of its path */
  token: string;
  /** the identifier's DNS name (or address), always a permitted target */
  identifierHost: string;
  /** other names a redirect may lead to */
  mayRedirectTo?: ((host: string) => boolean) | undefined;
}

/**
 * Where a Location header may take the validation. Only http and https, only the allowed
 * ports, only DNS names (resolved through the configured resolver like the first request):
 * a redirect to an IP literal is refused, because it would let a requester point the CA at
 * any internal address without controlling a DNS name for it. WHATWG URL parsing normalises
 * numeric hosts first (`http://2130706433/` is 127.0.0.1), so those are refused as well.
 * The target must be the identifier's own name or one the requester may have certificates
 * for, and its path must still end in the challenge's own path with no query: a redirect
 * cannot make the CA fetch some other page of some other host.
 */
export function decideRedirect(location: string, from: URL, settings: Pick<ChallengeSettings, "http01Port" | "tlsAlpn01Port">, scope: RedirectScope): RedirectDecision {
  let url: URL;
  try {
    url = new URL(location, from);
  } catch {
    return { ok: false, reason: "the Location is not a URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { ok: false, reason: `scheme ${url.protocol.slice(0, 20)} is not http or https` };
  if (url.username || url.password) return { ok: false, reason: "the URL carries credentials" };
  const port = effectivePort(url);
  const allowed = allowedRedirectPorts(settings);
  if (!allowed.has(port)) return { ok: false, reason: `port ${port} is not one of the validation ports (${[...allowed].join(", ")})` };
  const host = bareHostname(url);
  if (isIP(host)) return { ok: false, reason: "redirects to IP addresses are not followed" };
  if (!host || host.length > 253) return { ok: false, reason: "the host name is empty or too long" };
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name !== scope.identifierHost.toLowerCase().replace(/\.$/, "") && !scope.mayRedirectTo?.(name))
    return { ok: false, reason: "its host is neither the identifier nor a name this account may have certificates for" };
  if (!url.pathname.endsWith(`/.well-known/acme-challenge/${scope.token}`) || url.search)
    return { ok: false, reason: "its path does not end in /.well-known/acme-challenge/<token> or it has a query" };
  return { ok: true, url };
}
