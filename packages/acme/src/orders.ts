// The ACME registration authority for orders (RFC 8555 §7.4-7.5): new orders within the
// provisioner's policy and the hourly limits, authorizations (a validation lost with its
// process fails), challenge responses within the limits on failed and waiting validations,
// finalization through the CA's one issuance pipeline, and renewal information (RFC 9773).
// The router turns JWS requests into these calls and their answers into views; this
// service never sees HTTP, and its refusals are AcmeProblems.
import { randomBytes, type KeyObject } from "node:crypto";
import type { CaRuntime, Requester } from "@pki/authority";
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeIdentifier, AcmeOrderRecord, ProvisionerRecord } from "@pki/db";
import type { Logger } from "@pki/logger";
import type { ProvisionerPolicy } from "@pki/policy";
import type { ChallengeType } from "@pki/challenges";
import { CaError, formatSan, isProfileName, namesOf, parseCsr, type ProfileName } from "@pki/x509";
import { canonicalIp, normaliseIdentifiers, sanOf } from "./identifiers.ts";
import { acmeOrders } from "./metrics.ts";
import { ACME_ERROR, AcmeProblem, malformed, type Subproblem } from "./problems.ts";
import { parseCertId, renewalWindow } from "./renewal-info.ts";
import { STALE_VALIDATION_FACTOR, VALIDATION_LIMITS } from "./validation.ts";

const ORDER_TTL_MS = 24 * 3600_000;
const HOUR_MS = 3600_000;

const CHALLENGE_TYPES: Record<"dns" | "ip", ChallengeType[]> = { dns: ["http-01", "dns-01", "tls-alpn-01"], ip: ["http-01", "tls-alpn-01"] };

const newToken = () => randomBytes(32).toString("base64url");

/** Who asks: an account of a live provisioner, from an address. */
export interface AcmeRequester {
  provisioner: ProvisionerRecord;
  policy: ProvisionerPolicy;
  account: AcmeAccountRecord;
  sourceIp: string;
}

export interface NewOrderInput {
  identifiers: unknown;
  profile?: unknown;
  /** RFC 9773 CertID of the certificate this order replaces */
  replaces?: unknown;
  notBefore?: unknown;
  notAfter?: unknown;
}

export interface FinalizeInput {
  orderId: string;
  /** the finalize payload's `csr`: base64url DER */
  csr: unknown;
  /** the key that signed the request (a CSR for it is refused) */
  accountKey: KeyObject;
}

export const actorOf = (provisioner: ProvisionerRecord, account: AcmeAccountRecord) => `acme:${provisioner.name}/${account.id}`;

export class AcmeOrders {
  private readonly store: CaRuntime["inventory"]["acme"];

  constructor(
    private readonly runtime: CaRuntime,
    private readonly log: Logger,
    /** told when a challenge waits for validation (the keyless validator) */
    private readonly validation: { wake(): void } | undefined,
  ) {
    this.store = runtime.inventory.acme;
  }

  private now(): Date {
    return this.runtime.clock.now();
  }

  /** A new order of names the provisioner may issue for, in a profile it offers, within the hourly limits. */
  async newOrder(who: AcmeRequester, input: NewOrderInput): Promise<AcmeOrderRecord> {
    if (input.notBefore !== undefined || input.notAfter !== undefined) throw malformed("notBefore/notAfter are not supported: the profile and the provisioner decide a certificate's lifetime");
    const identifiers = normaliseIdentifiers(input.identifiers);
    rejectOutsidePolicy(who, identifiers);
    let profile = defaultProfile(who.policy);
    if (input.profile !== undefined) {
      if (typeof input.profile !== "string" || !isProfileName(input.profile) || !who.policy.profiles.includes(input.profile))
        throw new AcmeProblem("invalidProfile", `profile '${String(input.profile).slice(0, 40)}' is not offered here; use one of ${who.policy.profiles.join(", ")} (directory meta.profiles)`);
      profile = input.profile;
    }
    const replacesSerial = input.replaces === undefined ? undefined : await this.replacedSerial(who.account, input.replaces);
    const limits = this.runtime.config.acme.rateLimits;
    const since = new Date(this.now().getTime() - HOUR_MS);
    // the hourly limits are counted by the statement that creates the order
    const { order, counts } = await this.store.createOrder(
      { accountId: who.account.id, provisionerId: who.provisioner.id, identifiers, profile, replacesSerial, expiresAt: new Date(this.now().getTime() + ORDER_TTL_MS) },
      identifiers.map((identifier) => {
        const wildcard = identifier.type === "dns" && identifier.value.startsWith("*.");
        const types = wildcard ? (["dns-01"] as ChallengeType[]) : CHALLENGE_TYPES[identifier.type];
        return { identifier: wildcard ? { type: "dns", value: identifier.value.slice(2) } : identifier, wildcard, challenges: types.map((type) => ({ type, token: newToken() })) };
      }),
      { since, perAccount: limits.ordersPerAccountHour, perProvisioner: limits.ordersPerProvisionerHour },
    );
    this.checkRate("orders", counts.account, limits.ordersPerAccountHour, `account ${who.account.id}`);
    this.checkRate("orders", counts.provisioner, limits.ordersPerProvisionerHour, `ACME provisioner '${who.provisioner.name}'`);
    if (!order) throw new AcmeProblem("rateLimited", "the order limits were reached; retry shortly", { retryAfterSeconds: 5 });
    acmeOrders.inc({ provisioner: who.provisioner.name, state: "pending" });
    return order;
  }

  /** The account's order; a pending or ready one past its expiry becomes invalid. */
  async order(account: AcmeAccountRecord, id: string): Promise<AcmeOrderRecord> {
    const order = await this.store.order(id);
    if (!order || order.accountId !== account.id) throw new AcmeProblem("malformed", "no such order for this account", { status: 404 });
    if ((order.status === "pending" || order.status === "ready") && order.expiresAt <= this.now()) {
      await this.store.setOrderStatus(order.id, order.status, "invalid", { error: { type: `${ACME_ERROR}malformed`, detail: "the order expired" } });
      return { ...order, status: "invalid" };
    }
    return order;
  }

  /** Issues the ready order's certificate for a CSR naming exactly its identifiers; the order ends valid (or invalid, or ready again when the CA itself failed). */
  async finalize(who: AcmeRequester, input: FinalizeInput): Promise<AcmeOrderRecord> {
    // ready → processing in the statement that reads the order (the usual case); any other
    // state is explained from a plain read
    const order = await this.store.startFinalizing(input.orderId, who.account.id, this.now());
    if (!order) {
      const current = await this.order(who.account, input.orderId);
      if (current.status === "ready") throw new AcmeProblem("orderNotReady", "the order is already being finalized");
      throw new AcmeProblem("orderNotReady", `the order is ${current.status}, not ready: ${current.status === "pending" ? "complete its authorizations first" : "it cannot be finalized"}`);
    }
    let csr: ReturnType<typeof parseCsr>;
    try {
      csr = csrOfOrder(input.csr, order, input.accountKey);
    } catch (error) {
      // a CSR the order cannot take leaves the order ready for a better one
      await this.store
        .setOrderStatus(order.id, "processing", "ready")
        .catch((revertError: Error) => this.log.error({ err: revertError, order: order.id }, "could not put an ACME order back to ready"));
      throw error;
    }
    try {
      const requester: Requester = { kind: "provisioner", actor: actorOf(who.provisioner, who.account), provisioner: who.provisioner, sourceIp: who.sourceIp };
      const issued = await this.runtime.authority.issue({ csr, profile: order.profile as ProfileName, requester, predecessorSerial: order.replacesSerial ?? undefined });
      await this.store.setOrderStatus(order.id, "processing", "valid", { certificateSerial: issued.serial });
      acmeOrders.inc({ provisioner: who.provisioner.name, state: "valid" });
      return { ...order, status: "valid", certificateSerial: issued.serial };
    } catch (error) {
      const problem = issuanceProblem(error);
      if (problem.status >= 500) {
        // the order may be finalized again once the CA is back
        await this.store.setOrderStatus(order.id, "processing", "ready");
      } else {
        await this.store.setOrderStatus(order.id, "processing", "invalid", { error: { type: ACME_ERROR + problem.type, detail: problem.message } });
        acmeOrders.inc({ provisioner: who.provisioner.name, state: "invalid" });
      }
      throw problem;
    }
  }

  /**
   * The account's authorization, deactivated first when asked. A validation running far
   * past its deadline was lost with the process that ran it: the authorization fails rather
   * than waiting forever (the client may order again).
   */
  async authorization(account: AcmeAccountRecord, id: string, change?: { deactivate: true }): Promise<AcmeAuthorizationRecord> {
    let authz = await this.ownAuthorization(account, id);
    const staleBefore = this.now().getTime() - STALE_VALIDATION_FACTOR * this.runtime.config.challenges.timeoutMs;
    const lost = authz.challenges.filter((c) => c.status === "processing" && c.validatedAt !== null && c.validatedAt.getTime() < staleBefore).map((c) => c.id);
    for (const lostId of lost) {
      await this.store.finishChallenge(
        lostId,
        { ok: false, problem: { type: `${ACME_ERROR}serverInternal`, detail: "the validation was interrupted (the server restarted); place a new order", status: 500 } },
        this.now(),
      );
    }
    if (lost.length) authz = await this.ownAuthorization(account, authz.id);
    if (change?.deactivate) {
      if (!(await this.store.deactivateAuthorization(authz.id))) throw malformed(`the authorization is ${authz.status} and cannot be deactivated`);
      authz = (await this.store.authorization(authz.id)) as AcmeAuthorizationRecord;
    }
    return authz;
  }

  /** The account's challenge, with its authorization. */
  async challenge(account: AcmeAccountRecord, challengeId: string): Promise<{ authz: AcmeAuthorizationRecord; challenge: AcmeChallengeRecord }> {
    const authz = await this.store.authorizationOfChallenge(challengeId);
    const challenge = authz?.challenges.find((c) => c.id === challengeId);
    if (!authz || !challenge || challenge.accountId !== account.id) throw new AcmeProblem("malformed", "no such challenge for this account", { status: 404 });
    return { authz, challenge };
  }

  /**
   * The client says the challenge is ready: it becomes processing, within the limits on
   * failed validations and on validations waiting per account and per provisioner, and the
   * validator is woken. Answers the challenge as it now is.
   */
  async respondToChallenge(who: AcmeRequester, challenge: AcmeChallengeRecord): Promise<AcmeChallengeRecord> {
    if (challenge.status !== "pending") return challenge;
    const limits = this.runtime.config.acme.rateLimits;
    // the hourly limits and the bounds on waiting validations are counted by the statement that starts it
    const { started, counts } = await this.store.startChallengeWithinLimits(
      challenge.id,
      this.now(),
      { accountId: who.account.id, provisionerId: who.provisioner.id },
      {
        since: new Date(this.now().getTime() - HOUR_MS),
        perAccount: limits.failedValidationsPerAccountHour,
        perProvisioner: limits.failedValidationsPerProvisionerHour,
        pendingPerAccount: VALIDATION_LIMITS.pendingPerAccount,
        pendingPerProvisioner: VALIDATION_LIMITS.pendingPerProvisioner,
      },
    );
    const retryAfterSeconds = Math.ceil(this.runtime.config.challenges.timeoutMs / 1000);
    if (!started && counts.accountPending >= VALIDATION_LIMITS.pendingPerAccount)
      throw new AcmeProblem("rateLimited", `this account already has ${VALIDATION_LIMITS.pendingPerAccount} validations running or waiting; poll them, then retry`, { retryAfterSeconds });
    if (!started && counts.provisionerPending >= VALIDATION_LIMITS.pendingPerProvisioner)
      throw new AcmeProblem("rateLimited", `this ACME provisioner already has ${VALIDATION_LIMITS.pendingPerProvisioner} validations running or waiting; retry shortly`, { retryAfterSeconds });
    this.checkRate("failed validations", counts.account, limits.failedValidationsPerAccountHour, `account ${who.account.id} (validations still running count too)`);
    if (counts.accountFailed > 0)
      this.checkRate("failed validations", counts.provisioner, limits.failedValidationsPerProvisionerHour, `ACME provisioner '${who.provisioner.name}' (accounts without failures go on)`);
    if (!started) return (await this.store.challenge(challenge.id)) ?? challenge;
    // validated after this answer, by the keyless validator: the client polls the authorization (RFC 8555 §7.5.1)
    this.validation?.wake();
    return { ...challenge, status: "processing" };
  }

  /** RFC 9773: when to renew the certificate a CertID names (now, if it or its intermediate was revoked). */
  async renewalInfo(certId: string): Promise<{ start: Date; end: Date }> {
    const serial = parseCertId(certId);
    const record = await this.runtime.inventory.certificates.get(serial);
    const issuer = record && this.runtime.keyring.get(record.issuerId);
    if (!record || !issuer || !parseCertId.matchesIssuer(certId, issuer.facts.subjectKeyId)) throw new AcmeProblem("malformed", "no certificate by that CertID", { status: 404 });
    // The keyring may hold the issuer as it was before an emergency revocation: ask the inventory.
    const issuerNow = await this.runtime.inventory.issuers.get(record.issuerId);
    return renewalWindow(record, { issuerRevoked: !!issuerNow?.revokedAt, renewAtFraction: this.runtime.config.scheduler.renewAtFraction, now: this.now() });
  }

  /** Refuses, as rateLimited with Retry-After, a count that has reached its hourly limit. */
  checkRate(kind: "orders" | "failed validations" | "new accounts", counted: { count: number; oldest: Date | null }, limit: number, who: string): void {
    const { count: used, oldest } = counted;
    if (used < limit) return;
    const now = this.now().getTime();
    const retryAfter = Math.max(1, Math.ceil(((oldest?.getTime() ?? now) + HOUR_MS - now) / 1000));
    throw new AcmeProblem("rateLimited", `${who} has reached its limit of ${limit} ${kind} per hour; retry after ${retryAfter} s`, { retryAfterSeconds: retryAfter });
  }

  private async ownAuthorization(account: AcmeAccountRecord, id: string): Promise<AcmeAuthorizationRecord> {
    const authz = await this.store.authorization(id);
    if (!authz || authz.accountId !== account.id) throw new AcmeProblem("malformed", "no such authorization for this account", { status: 404 });
    return authz;
  }

  private async replacedSerial(account: AcmeAccountRecord, certId: unknown): Promise<string> {
    const serial = parseCertId(certId);
    const record = await this.runtime.inventory.certificates.get(serial);
    const origin = record && (await this.store.certificateOrigin(serial));
    if (!record || !origin || origin.accountId !== account.id) throw malformed(`'replaces' names no certificate issued to this account`);
    const issuer = this.runtime.keyring.get(record.issuerId);
    if (issuer && !parseCertId.matchesIssuer(certId, issuer.facts.subjectKeyId)) throw malformed("'replaces' names a certificate by the wrong authority key identifier");
    if (record.successorSerial || (await this.store.replacementPending(serial))) throw new AcmeProblem("alreadyReplaced", `certificate ${serial} already has a replacement order or successor`);
    return serial;
  }
}

/** The profile an order gets when it names none: server if the provisioner allows it. */
function defaultProfile(policy: ProvisionerPolicy): ProfileName {
  return policy.profiles.includes("server" as ProfileName) ? ("server" as ProfileName) : (policy.profiles[0] as ProfileName);
}

/** Asks the provisioner's policy about each name now, so a refusal comes before any challenge. */
function rejectOutsidePolicy(who: AcmeRequester, identifiers: AcmeIdentifier[]): void {
  const subproblems: Subproblem[] = [];
  for (const identifier of identifiers) {
    try {
      who.policy.authorizeNames({ commonName: undefined, sans: [sanOf(identifier)] });
    } catch (error) {
      if (!(error instanceof CaError)) throw error;
      subproblems.push({ type: `${ACME_ERROR}rejectedIdentifier`, detail: error.message, identifier });
    }
  }
  if (subproblems.length) {
    throw new AcmeProblem(
      "rejectedIdentifier",
      subproblems.length === 1 ? (subproblems[0] as Subproblem).detail : `${subproblems.length} identifiers are outside what ACME provisioner '${who.provisioner.name}' may issue for`,
      { subproblems },
    );
  }
}

/** The finalize payload's CSR, when it names exactly the order's identifiers and is not for the account key (badCSR otherwise). */
function csrOfOrder(csrText: unknown, order: AcmeOrderRecord, accountKey: KeyObject): ReturnType<typeof parseCsr> {
  if (typeof csrText !== "string" || !/^[A-Za-z0-9_-]+$/.test(csrText)) throw malformed("finalize needs 'csr': the DER CSR in base64url");
  let csr: ReturnType<typeof parseCsr>;
  let names: ReturnType<typeof namesOf>;
  try {
    csr = parseCsr(Buffer.from(csrText, "base64url"));
    names = namesOf(csr);
  } catch (error) {
    throw new AcmeProblem("badCSR", (error as Error).message, { cause: error });
  }
  // RFC 8555 §11.1: whoever held the certificate's key (a server, a load balancer) would otherwise control the account.
  if (csr.publicKeySpki.equals(accountKey.export({ type: "spki", format: "der" }))) throw new AcmeProblem("badCSR", "the CSR's key is the account key; use a separate key for the certificate");
  const wanted = new Set(order.identifiers.map((i) => formatSan(sanOf(i))));
  const got = new Set(names.sans.map((s) => formatSan(s.type === "IP" ? { type: "IP", value: canonicalIp(s.value) ?? s.value } : s)));
  // A CN must be one of the names too (namesOf has already copied a host-name or address CN into the SANs).
  if (names.commonName !== undefined && !wanted.has(`DNS:${names.commonName.toLowerCase()}`) && !wanted.has(`IP:${canonicalIp(names.commonName) ?? ""}`)) {
    throw new AcmeProblem("badCSR", `the CSR's CN '${names.commonName.slice(0, 64)}' is not one of the order's identifiers`);
  }
  const missing = [...wanted].filter((n) => !got.has(n));
  const extra = [...got].filter((n) => !wanted.has(n));
  if (missing.length || extra.length) {
    throw new AcmeProblem(
      "badCSR",
      `the CSR's names must be exactly the order's identifiers${missing.length ? `; missing ${missing.join(", ")}` : ""}${extra.length ? `; not in the order: ${extra.join(", ")}` : ""}`,
    );
  }
  return csr;
}

/** CA errors from issuance as ACME problems: a refused name is rejectedIdentifier, a bad CSR badCSR. */
function issuanceProblem(error: unknown): AcmeProblem {
  if (error instanceof AcmeProblem) return error;
  if (error instanceof CaError) {
    if (error.kind === "forbidden") return new AcmeProblem("rejectedIdentifier", error.message, { status: 403, cause: error });
    if (error.kind === "bad_request") return new AcmeProblem("badCSR", error.message, { cause: error });
  }
  return asProblem(error);
}

/** Any error as an ACME problem: the CA's own errors by kind, anything else a 500 that keeps its cause. */
export function asProblem(error: unknown, maxJwsBytes = 64 * 1024): AcmeProblem {
  if (error instanceof AcmeProblem) return error;
  if (error instanceof CaError) {
    const map: Record<string, [string, number]> = {
      bad_request: ["malformed", 400],
      forbidden: ["unauthorized", 403],
      unauthorized: ["unauthorized", 401],
      not_found: ["malformed", 404],
      conflict: ["conflict", 409],
      unavailable: ["serverInternal", 503],
    };
    const [type, status] = map[error.kind] ?? ["serverInternal", 500];
    return new AcmeProblem(type as "malformed", error.message, { status, cause: error, ...(status === 503 ? { retryAfterSeconds: 5 } : {}) });
  }
  const e = error as { type?: string; status?: number };
  if (e?.type === "entity.too.large") return new AcmeProblem("malformed", `the request body is larger than ${maxJwsBytes} bytes`, { status: 413 });
  return new AcmeProblem("serverInternal", "the server could not complete this request", { status: 500, cause: error });
}
