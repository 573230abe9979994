// Authentication for the issuing API: bearer tokens (admin or provisioner) and client
// certificates. Tokens are looked up by their SHA-256 through a unique index, so the time
// an answer takes does not depend on how much of a guess was right.
import type { Request } from "express";
import { createHash, timingSafeEqual } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { CaError } from "@pki/x509";
import { inventoryFailure, type CaRuntime } from "@pki/authority";
import type { ProvisionerRecord } from "@pki/db";
import { verifyClientCertificate, type ClientCertificate } from "./mtls.ts";
import type { AuthRequirement } from "./route.ts";
import type { VerifiedTokens } from "./verified-tokens.ts";
import type { FailureCounter } from "./failure-limiter.ts";
import { type CredentialGate, TooManyFailures } from "./credential-gate.ts";

export type Caller =
  | { kind: "anonymous"; actor: "anonymous" }
  | { kind: "admin"; actor: string; name: string; session?: ConsoleSession }
  | { kind: "provisioner"; actor: string; provisioner: ProvisionerRecord }
  | { kind: "mtls"; actor: string; client: ClientCertificate };

const unauthorized = (message: string) => new CaError("unauthorized", message);

/** The operator console's session cookie. */
export const SESSION_COOKIE = "pki_session";
/** A session ends this long after login however busy it is. */
export const SESSION_ABSOLUTE_SECONDS = 12 * 3600;
/** Live sessions one operator may hold; logging in once more ends their oldest. */
export const SESSIONS_PER_OPERATOR = 20;

/** A live console session as the request presented it (the cookie value stays in memory only). */
export interface ConsoleSession {
  cookieValue: string;
  idHash: string;
  operator: string;
  csrfToken: string;
  expiresAt: Date;
}

export const sessionHash = (cookieValue: string) => createHash("sha256").update(cookieValue, "utf8").digest("hex");

/** The session cookie's value when the request carries one that could be ours (43 base64url characters). */
export function sessionCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [name, value] = part.trim().split("=", 2);
    if (name === SESSION_COOKIE && value !== undefined) return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : "";
  }
  return undefined;
}

/** The live session the request's cookie names; 401 when there is none. */
export async function sessionCaller(req: Request, runtime: CaRuntime): Promise<Caller & { kind: "admin"; session: ConsoleSession }> {
  const cookieValue = sessionCookie(req);
  if (!cookieValue) throw unauthorized("there is no console session: log in with POST /v1/console/session, or send 'Authorization: Bearer <admin token>'");
  const idHash = sessionHash(cookieValue);
  const session = await runtime.inventory.consoleSessions.use(idHash, runtime.clock.now(), runtime.config.api.consoleIdleSeconds).catch((error: unknown) => {
    throw inventoryFailure(error, "cannot check the console session");
  });
  if (!session) throw unauthorized("the console session has ended (idle too long, past its 12 h lifetime, logged out, or the operator was removed); log in again");
  return {
    kind: "admin",
    actor: `admin:${session.operator}`,
    name: session.operator,
    session: { cookieValue, idHash, operator: session.operator, csrfToken: session.csrfToken, expiresAt: session.expiresAt },
  };
}

/** Constant-time comparison of the X-CSRF-Token header with the session's token. */
export function csrfMatches(req: Request, session: ConsoleSession): boolean {
  const sent = req.headers["x-csrf-token"];
  if (typeof sent !== "string") return false;
  const a = createHash("sha256").update(sent, "utf8").digest();
  const b = createHash("sha256").update(session.csrfToken, "utf8").digest();
  return timingSafeEqual(a, b);
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header.trim());
  if (!match) throw unauthorized("the Authorization header must be 'Bearer <token>'");
  return match[1];
}

type TokenCaller = Caller & { kind: "admin" | "provisioner" };

async function tokenCaller(runtime: CaRuntime, token: string): Promise<TokenCaller | undefined> {
  const asAdmin = async (): Promise<TokenCaller | undefined> => {
    const admin = await runtime.inventory.admins.verify(token);
    return admin ? { kind: "admin", actor: `admin:${admin}`, name: admin } : undefined;
  };
  const asProvisioner = async (): Promise<TokenCaller | undefined> => {
    const provisioner = await runtime.inventory.provisioners.verify(token);
    return provisioner ? { kind: "provisioner", actor: `provisioner:${provisioner.name}`, provisioner } : undefined;
  };
  // Provisioner tokens carry a prefix: look where the token most likely is first (one query
  // on the hot enrolment path), then the other place, since an admin may have chosen any token.
  return token.startsWith("pkp_") ? ((await asProvisioner()) ?? (await asAdmin())) : ((await asAdmin()) ?? (await asProvisioner()));
}

/** Bearer tokens this process verified (see VerifiedTokens); one per API process. */
export type TokenCache = VerifiedTokens<TokenCaller>;

/** Whether the request carries a bearer token or a console session cookie. */
const presentsCredential = (req: Request) => req.headers.authorization !== undefined || sessionCookie(req) !== undefined;

/** Establishes who is calling, as the route requires; throws 401/403 naming what is missing. */
export async function authenticate(req: Request, runtime: CaRuntime, requirement: AuthRequirement, tokens?: TokenCache): Promise<Caller> {
  if (requirement === "none" || (requirement === "optional" && !presentsCredential(req))) return { kind: "anonymous", actor: "anonymous" };
  // A credential sent to an open route is checked like anywhere else: a wrong one is a 401
  // (counted against the source), never a silent anonymous answer that would confirm a guess.
  if (requirement === "optional") return authenticate(req, runtime, "enrol", tokens);
  const token = bearerToken(req);
  // A session cookie stands for an admin token; an Authorization header always wins over it.
  if (token === undefined && requirement !== "mtls" && sessionCookie(req) !== undefined) {
    const caller = await sessionCaller(req, runtime);
    // The browser sends the cookie with any request to this origin; only our page can read
    // the CSRF token, so a state change must carry it.
    if (!SAFE_METHODS.has(req.method) && !csrfMatches(req, caller.session)) throw new CaError("forbidden", "missing or wrong CSRF token (send the session's csrfToken as X-CSRF-Token)");
    return caller;
  }
  if (requirement === "mtls" || (requirement === "adminOrMtls" && token === undefined)) {
    const client = await verifyClientCertificate(req.socket as TLSSocket, runtime);
    return { kind: "mtls", actor: `mtls:${client.serial}`, client };
  }
  if (token === undefined) {
    throw unauthorized(requirement === "enrol" ? "this route needs 'Authorization: Bearer <provisioner or admin token>'" : "this route needs 'Authorization: Bearer <admin token>'");
  }
  const verify = () => tokenCaller(runtime, token);
  const caller = await (tokens ? tokens.get(token, verify) : verify()).catch((error: unknown) => {
    throw inventoryFailure(error, "cannot check the token");
  });
  if (!caller) throw unauthorized("the bearer token is not a valid admin or provisioner token (it may have been disabled or removed)");
  if ((requirement === "admin" || requirement === "adminOrMtls") && caller.kind !== "admin") {
    throw new CaError("forbidden", `this route needs an admin token; ${caller.actor} may only enrol certificates`);
  }
  return caller;
}

/** The secret the request authenticates with, when it is one that can be guessed (not a client certificate). */
function presentedSecret(req: Request, requirement: AuthRequirement): string | undefined {
  if (requirement === "none" || requirement === "mtls") return undefined;
  const header = req.headers.authorization;
  if (header !== undefined) return `bearer ${header}`;
  const cookie = sessionCookie(req);
  return cookie ? `session ${cookie}` : undefined;
}

/**
 * `authenticate`, with failures counted against the source: a failing credential is 401
 * until the source passes the limit, 429 after; a secret one is checked through the
 * gate, which paces a source past the limit (see CredentialGate).
 */
export async function authenticateCounted(
  req: Request,
  runtime: CaRuntime,
  requirement: AuthRequirement,
  limiter: FailureCounter,
  gate: CredentialGate,
  sourceIp: string,
  tokens?: TokenCache,
): Promise<Caller> {
  const secret = presentedSecret(req, requirement);
  if (secret !== undefined) return gate.check(sourceIp, secret, () => authenticate(req, runtime, requirement, tokens));
  try {
    return await authenticate(req, runtime, requirement, tokens);
  } catch (error) {
    if (!(error instanceof CaError && error.kind === "unauthorized")) throw error;
    const wait = await limiter.recordFailure(sourceIp);
    if (wait !== undefined) throw new TooManyFailures(sourceIp, wait, { cause: error });
    throw error;
  }
}
