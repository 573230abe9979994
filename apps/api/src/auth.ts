// Authentication for the issuing API: bearer tokens (admin or provisioner) and client
// certificates. Tokens are looked up by their SHA-256 through a unique index, so the time
// an answer takes does not depend on how much of a guess was right.
import type { Request } from "express";
import type { TLSSocket } from "node:tls";
import { CaError, type CaRuntime } from "@pki/ca-core";
import type { ProvisionerRecord } from "@pki/db";
import { ProvisionerPolicy } from "@pki/policy";
import { verifyClientCertificate, type ClientCertificate } from "./mtls.ts";
import type { AuthRequirement } from "./route.ts";

export type Caller =
  | { kind: "anonymous"; actor: "anonymous" }
  | { kind: "admin"; actor: string; name: string }
  | { kind: "provisioner"; actor: string; provisioner: ProvisionerRecord; policy: ProvisionerPolicy }
  | { kind: "mtls"; actor: string; client: ClientCertificate };

const unauthorized = (message: string) => new CaError("unauthorized", message);

function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header.trim());
  if (!match) throw unauthorized("the Authorization header must be 'Bearer <token>'");
  return match[1];
}

export function policyOf(provisioner: ProvisionerRecord): ProvisionerPolicy {
  return ProvisionerPolicy.create({ name: provisioner.name, profiles: provisioner.profiles, names: provisioner.names, maxTtlSeconds: provisioner.maxTtlSeconds });
}

async function tokenCaller(runtime: CaRuntime, token: string): Promise<Caller | undefined> {
  const asAdmin = async (): Promise<Caller | undefined> => {
    const admin = await runtime.inventory.admins.verify(token);
    return admin ? { kind: "admin", actor: `admin:${admin}`, name: admin } : undefined;
  };
  const asProvisioner = async (): Promise<Caller | undefined> => {
    const provisioner = await runtime.inventory.provisioners.verify(token);
    return provisioner ? { kind: "provisioner", actor: `provisioner:${provisioner.name}`, provisioner, policy: policyOf(provisioner) } : undefined;
  };
  // Provisioner tokens carry a prefix: look where the token most likely is first (one query
  // on the hot enrolment path), then the other place, since an admin may have chosen any token.
  return token.startsWith("pkp_") ? ((await asProvisioner()) ?? (await asAdmin())) : ((await asAdmin()) ?? (await asProvisioner()));
}

/** Establishes who is calling, as the route requires; throws 401/403 naming what is missing. */
export async function authenticate(req: Request, runtime: CaRuntime, requirement: AuthRequirement): Promise<Caller> {
  if (requirement === "none") return { kind: "anonymous", actor: "anonymous" };
  const token = bearerToken(req);
  if (requirement === "mtls" || (requirement === "adminOrMtls" && token === undefined)) {
    const client = await verifyClientCertificate(req.socket as TLSSocket, runtime);
    return { kind: "mtls", actor: `mtls:${client.serial}`, client };
  }
  if (token === undefined) {
    throw unauthorized(requirement === "enrol" ? "this route needs 'Authorization: Bearer <provisioner or admin token>'" : "this route needs 'Authorization: Bearer <admin token>'");
  }
  const caller = await tokenCaller(runtime, token).catch((error: unknown) => {
    if (error instanceof CaError) throw error;
    throw new CaError("unavailable", "the inventory database is unavailable; cannot check the token");
  });
  if (!caller) throw unauthorized("the bearer token is not a valid admin or provisioner token (it may have been disabled or removed)");
  if ((requirement === "admin" || requirement === "adminOrMtls") && caller.kind !== "admin") {
    throw new CaError("forbidden", `this route needs an admin token; ${caller.actor} may only enrol certificates`);
  }
  return caller;
}

/**
 * Counts failed authentications per source address in fixed one-minute windows. Past the
 * limit every authenticated route answers 429 to that source until the window ends, which
 * makes guessing tokens slow without keeping any state in the database.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the source may try again, or undefined when it may try now. */
  retryAfter(source: string): number | undefined {
    const window = this.windows.get(source);
    if (!window) return undefined;
    const now = this.now();
    if (window.resetAt <= now) {
      this.windows.delete(source);
      return undefined;
    }
    return window.count >= this.limit ? Math.ceil((window.resetAt - now) / 1000) : undefined;
  }

  recordFailure(source: string): void {
    const now = this.now();
    const window = this.windows.get(source);
    if (window && window.resetAt > now) window.count += 1;
    else this.windows.set(source, { count: 1, resetAt: now + this.windowMs });
    if (this.windows.size > 10_000) this.forgetExpired(now);
  }

  private forgetExpired(now: number): void {
    for (const [source, window] of this.windows) if (window.resetAt <= now) this.windows.delete(source);
  }
}
