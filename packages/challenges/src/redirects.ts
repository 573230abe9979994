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

/**
 * Where a Location header may take the validation. Only http and https, only the allowed
 * ports, only DNS names (resolved through the configured resolver like the first request):
 * a redirect to an IP literal is refused, because it would let a requester point the CA at
 * any internal address without controlling a DNS name for it. WHATWG URL parsing normalises
 * numeric hosts first (`http://2130706433/` is 127.0.0.1), so those are refused as well.
 */
export function decideRedirect(location: string, from: URL, settings: Pick<ChallengeSettings, "http01Port" | "tlsAlpn01Port">): RedirectDecision {
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
  return { ok: true, url };
}
