import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { Deadline } from "./deadline.ts";
import { connectableAddresses, DeniedAddresses } from "./networks.ts";
import { errorName, fail, OK } from "./problems.ts";
import { bareHostname, decideRedirect, effectivePort, MAX_REDIRECTS, type RedirectScope } from "./redirects.ts";
import type { DnsLookups } from "./resolve.ts";
import type { ChallengeSettings, Identifier, ValidationResult } from "./types.ts";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_HEADER_BYTES = 8192;

/** What the validator is about to connect to; tests observe it to prove no forbidden target is ever reached. */
export interface ConnectAttempt {
  scheme: "http" | "https";
  host: string;
  address: string;
  port: number;
}

export interface Http01Hooks {
  onConnect?: (attempt: ConnectAttempt) => void;
}

export function http01Url(identifier: Identifier, token: string, port: number): URL {
  const host = identifier.type === "ip" && isIP(identifier.value) === 6 ? `[${identifier.value}]` : identifier.value;
  return new URL(`http://${host}:${port}/.well-known/acme-challenge/${token}`);
}

type Exchange = { kind: "redirect"; status: number; location: string } | { kind: "body"; body: Buffer } | { kind: "status"; status: number; body: Buffer };

class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body exceeds ${limit} bytes`);
  }
}

/**
 * RFC 8555 §8.3: GET the token from the identifier on the http-01 port, following at most
 * ten redirects within decideRedirect's rules, reading at most maxResponseBytes, all within
 * one deadline. The connection goes to the address the configured resolver gave; the Host
 * header (and TLS SNI after a redirect to https) carries the name.
 */
export async function validateHttp01(
  identifier: Identifier,
  token: string,
  keyAuthorization: string,
  mayRedirectTo: RedirectScope["mayRedirectTo"],
  settings: ChallengeSettings,
  lookups: DnsLookups,
  deadline: Deadline,
  hooks: Http01Hooks = {},
): Promise<ValidationResult> {
  let url = http01Url(identifier, token, settings.http01Port);
  const scope: RedirectScope = { token, identifierHost: identifier.value, mayRedirectTo };
  for (let hop = 0; ; hop++) {
    const host = bareHostname(url);
    let addresses: string[];
    try {
      addresses = await connectableAddresses(host, lookups, settings);
    } catch (error) {
      if (error instanceof DeniedAddresses) return fail("connection", error.message);
      return fail("dns", `looking up A/AAAA records for ${host} failed: ${errorName(error)}`);
    }
    let exchange: Exchange | undefined;
    let lastError: unknown;
    for (const address of addresses) {
      try {
        exchange = await fetchOnce(url, address, settings, deadline, hooks);
        break;
      } catch (error) {
        if (error instanceof TooLarge) return fail("unauthorized", `the response from ${url.href} is larger than ${error.limit} bytes`);
        lastError = error;
        if (deadline.expired) break;
      }
    }
    if (!exchange) return fail("connection", `fetching ${url.href} failed: ${errorName(deadline.expired ? deadline.signal.reason : lastError)}`);
    if (exchange.kind === "redirect") {
      if (hop >= MAX_REDIRECTS) return fail("connection", `fetching ${url.href}: more than ${MAX_REDIRECTS} redirects`);
      const next = decideRedirect(exchange.location, url, settings, scope);
      // Only where the Location pointed, never its path or query: what a target answers is not repeated to the requester.
      if (!next.ok) return fail("connection", `fetching ${url.href}: refused to follow a ${exchange.status} redirect${redirectTarget(exchange.location, url)}: ${next.reason}`);
      url = next.url;
      continue;
    }
    // Nothing of a body is quoted: the requester chose the target, which may be a page the CA can reach and they cannot.
    if (exchange.kind === "status") return fail("unauthorized", `fetching ${url.href}: status ${exchange.status}, not 200`);
    // RFC 8555 §8.3: the server SHOULD ignore whitespace at the end of the body.
    const body = exchange.body.toString("utf8").replace(/\s+$/, "");
    if (body !== keyAuthorization) {
      const hint = body.startsWith(`${token}.`) ? ": it holds this challenge's token with another account key's thumbprint" : "";
      return fail("incorrectResponse", `the ${exchange.body.length}-byte body at ${url.href} is not the key authorization${hint}`);
    }
    return OK;
  }
}

/** " to scheme://host:port" of a Location, when it parses. */
function redirectTarget(location: string, from: URL): string {
  try {
    const url = new URL(location, from);
    return ` to ${url.protocol}//${url.host.slice(0, 260)}`;
  } catch {
    return "";
  }
}

function fetchOnce(url: URL, address: string, settings: ChallengeSettings, deadline: Deadline, hooks: Http01Hooks): Promise<Exchange> {
  const secure = url.protocol === "https:";
  const port = effectivePort(url);
  const host = bareHostname(url);
  hooks.onConnect?.({ scheme: secure ? "https" : "http", host, address, port });
  const options: https.RequestOptions = {
    host: address,
    port,
    path: `${url.pathname}${url.search}`,
    method: "GET",
    headers: { Host: url.host, "User-Agent": "pki-acme-validator", Accept: "*/*", Connection: "close" },
    agent: false,
    maxHeaderSize: MAX_HEADER_BYTES,
    signal: deadline.signal,
  };
  if (secure) {
    // Redirects to https are followed without checking the certificate: http-01 proves
    // control of the content, the transport is not what is being validated.
    options.rejectUnauthorized = false;
    if (!isIP(host)) options.servername = host;
  }
  return new Promise<Exchange>((resolve, reject) => {
    const request = (secure ? https : http).request(options, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (REDIRECT_STATUSES.has(status) && location !== undefined) {
        response.destroy();
        resolve({ kind: "redirect", status, location });
        return;
      }
      const declared = Number(response.headers["content-length"]);
      if (status === 200 && Number.isFinite(declared) && declared > settings.maxResponseBytes) {
        response.destroy();
        reject(new TooLarge(settings.maxResponseBytes));
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > settings.maxResponseBytes) {
          response.destroy();
          if (status === 200) reject(new TooLarge(settings.maxResponseBytes));
          else resolve({ kind: "status", status, body: Buffer.concat(chunks) });
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve(status === 200 ? { kind: "body", body } : { kind: "status", status, body });
      });
      response.on("error", reject);
      // A deadline abort or a peer reset mid-body: whatever settled first stands.
      response.on("close", () => reject(deadline.expired ? deadline.signal.reason : new Error("the connection closed before the body ended")));
    });
    request.on("error", reject);
    request.end();
  });
}
