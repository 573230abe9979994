// ACME challenge validation (RFC 8555 §8, RFC 8737, RFC 8738) and the CAA check (RFC 8659):
// the only code of the CA that connects to hosts a requester names. Every lookup goes
// through the configured resolver; every validation is bounded in time, bytes and redirects.
import { isIP } from "node:net";
import { checkCaaRecords } from "./caa.ts";
import { Deadline } from "./deadline.ts";
import { validateDns01 } from "./dns01.ts";
import { type Http01Hooks, validateHttp01 } from "./http01.ts";
import { fail } from "./problems.ts";
import { DnsLookups } from "./resolve.ts";
import { validateTlsAlpn01 } from "./tlsalpn01.ts";
import type { ChallengeInput, ChallengeSettings, Identifier, ValidationResult } from "./types.ts";

const DNS_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/i;

/**
 * The ACME server checks identifiers before it gets here; this repeats the shape check
 * because the value becomes part of a URL and a TLS SNI: `host:22/x` must never turn
 * into a connection to port 22.
 */
function identifierProblem(identifier: Identifier): string | undefined {
  const value = identifier?.value;
  if (typeof value !== "string") return "the identifier has no value";
  if (identifier.type === "ip") return isIP(value) && !value.includes("%") ? undefined : `${JSON.stringify(value.slice(0, 64))} is not an IP address`;
  if (identifier.type !== "dns") return `unknown identifier type ${JSON.stringify(String(identifier.type).slice(0, 20))}`;
  return value.length <= 253 && DNS_NAME.test(value) && !isIP(value) ? undefined : `${JSON.stringify(value.slice(0, 64))} is not a DNS name`;
}

export { caaLookupNames } from "./caa.ts";
export { dns01Digest, dns01RecordName } from "./dns01.ts";
export type { ConnectAttempt, Http01Hooks } from "./http01.ts";
export { type Reservation, type ValidationLimits, ValidationLimiter, ValidationLimitError, type ValidationScope } from "./limiter.ts";
export { ipBytes } from "./ip.ts";
export { ALWAYS_DENIED_NETWORKS, addressAllowed, parseNetwork } from "./networks.ts";
export { allowedRedirectPorts, decideRedirect, MAX_REDIRECTS, type RedirectDecision, type RedirectScope } from "./redirects.ts";
export { ACME_TLS_ALPN, checkAcmeCertificate, ID_PE_ACME_IDENTIFIER } from "./tlsalpn01.ts";
export type { ChallengeInput, ChallengeSettings, ChallengeType, Identifier, Problem, ValidationResult } from "./types.ts";

/** Proves (or not) that the requester controls the identifier. Never throws: every failure is a problem. */
export async function validateChallenge(input: ChallengeInput, settings: ChallengeSettings, hooks: Http01Hooks = {}): Promise<ValidationResult> {
  const { type, identifier, token, keyAuthorization, mayRedirectTo } = input;
  const badIdentifier = identifierProblem(identifier);
  if (badIdentifier) return fail("malformed", badIdentifier);
  if (identifier.value.startsWith("*.") && type !== "dns-01") return fail("unauthorized", `${type} cannot validate the wildcard ${identifier.value}; use dns-01`);
  if (identifier.type === "ip" && type === "dns-01") return fail("unauthorized", "dns-01 cannot validate an IP address identifier");
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return fail("malformed", "the token is not base64url");
  const deadline = new Deadline(settings.timeoutMs);
  try {
    const lookups = new DnsLookups(settings, deadline);
    switch (type) {
      case "http-01":
        return await validateHttp01(identifier, token, keyAuthorization, mayRedirectTo, settings, lookups, deadline, hooks);
      case "dns-01":
        return await validateDns01(identifier, keyAuthorization, lookups);
      case "tls-alpn-01":
        return await validateTlsAlpn01(identifier, keyAuthorization, settings, lookups, deadline);
      default:
        return fail("malformed", `unknown challenge type ${String(type).slice(0, 40)}`);
    }
  } catch (error) {
    return fail("serverInternal", `validating ${type} for ${identifier.value} failed unexpectedly: ${(error as Error)?.message?.slice(0, 200)}`);
  } finally {
    deadline.dispose();
  }
}

/** RFC 8659: may this CA (named by any of caIdentities in CAA issue properties) issue for the domain? */
export async function checkCaa(domain: string, caIdentities: string[], settings: ChallengeSettings, opts: { wildcard: boolean }): Promise<ValidationResult> {
  // CAA is a DNS property; IP address identifiers have none to check (RFC 8738 §7).
  if (isIP(domain)) return { ok: true };
  const badDomain = identifierProblem({ type: "dns", value: domain });
  if (badDomain) return fail("malformed", badDomain);
  const deadline = new Deadline(settings.timeoutMs);
  try {
    return await checkCaaRecords(domain, caIdentities, new DnsLookups(settings, deadline), opts.wildcard);
  } catch (error) {
    return fail("dns", `checking CAA for ${domain.slice(0, 253)} failed: ${(error as Error)?.message?.slice(0, 200)}`);
  } finally {
    deadline.dispose();
  }
}
