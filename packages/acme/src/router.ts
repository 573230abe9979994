// The ACME server (RFC 8555) of one provisioner, mounted at /acme/<provisioner>/ on the
// HTTPS issuing listener. It authenticates accounts and proves control of names; the
// certificate itself comes from runtime.authority.issue, which applies the provisioner's
// policy, lints, records intent and writes the inventory like for every other front end.
import { type KeyObject, randomBytes, X509Certificate } from "node:crypto";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { JWK } from "jose";
import { CaError, formatSan, isProfileName, namesOf, parseCsr, toPem, type ProfileName } from "@pki/x509";
import { REASON_NAMES, REVOCATION_REASONS, revokeCertificate, type CaRuntime, type Requester } from "@pki/authority";
import {
  AcmeAccountKeyInUseError,
  AcmeAccountLimitError,
  AcmeEabKeyUnusableError,
  type AcmeAccountRecord,
  type AcmeAuthorizationRecord,
  type AcmeChallengeRecord,
  type AcmeIdentifier,
  type AcmeOrderRecord,
  type AcmeProvisionerRecord,
  ChangeClearedCache,
  type Inventory,
  type ProvisionerRecord,
} from "@pki/db";
import type { Logger } from "@pki/logger";
import { ProvisionerPolicy } from "@pki/policy";
import type { ChallengeType } from "@pki/challenges";
import { canonicalIp, normaliseIdentifiers, sanOf, sourceNetwork } from "./identifiers.ts";
import { ACCOUNT_ALGORITHMS, EAB_ALGORITHMS, accountKey, checkAlgorithm, checkKeyAlgorithm, checkUrl, parseFlattened, protectedHeader, thumbprint, verifyWith } from "./jws.ts";
import { NonceMinter } from "./nonces.ts";
import { acmeOrders } from "./metrics.ts";
import { AcmeProblem, ACME_ERROR, malformed, unauthorized, type Subproblem } from "./problems.ts";
import { parseCertId, renewalWindow } from "./renewal-info.ts";
import { STALE_VALIDATION_FACTOR, VALIDATION_LIMITS } from "./validation.ts";

export const MAX_JWS_BYTES = 64 * 1024;
const NONCE_TTL_MS = 30 * 60_000;
const ORDER_TTL_MS = 24 * 3600_000;
const HOUR_MS = 3600_000;
const MAX_CONTACTS = 4;
const MAX_CONTACT_CHARS = 254;
const ORDERS_PAGE = 100;
const RENEWAL_INFO_RETRY_SECONDS = 6 * 3600;
/** Imported account keys kept per process (a KeyObject is a few hundred bytes). */
const ACCOUNT_KEY_CACHE_ENTRIES = 10_000;
/** Account URLs end in a UUID; anything longer in a kid is not one of ours. */
const MAX_ACCOUNT_ID_CHARS = 64;

/** A signature that did not verify with the key tried (verification is tried again with the account's current key). */
const NOT_VERIFIED = Symbol("not verified");

const checkKeyFits = (key: KeyObject, alg: string): boolean => {
  try {
    checkKeyAlgorithm(key, alg);
    return true;
  } catch {
    return false;
  }
};

/** An ACME provisioner with its ACME settings, and its policy when it is live. */
interface ResolvedProvisioner {
  provisioner: AcmeProvisionerRecord;
  policy: ProvisionerPolicy | undefined;
}

/** ACME provisioners by name, kept until any credential or ACME setting changes (see ChangeClearedCache). */
export type AcmeProvisionerCache = ChangeClearedCache<ResolvedProvisioner>;

/** Provisioners kept at most (only existing ACME provisioners are cached). */
const PROVISIONER_CACHE_ENTRIES = 1_000;
/** Even with a live listener, a provisioner is read again after this long. */
const PROVISIONER_CACHE_TTL_MS = 60_000;

/** A cache for acmeRouter's provisioner lookups; its owner closes it (it holds a LISTEN connection). */
export function acmeProvisionerCache(inventory: Pick<Inventory, "watch">): AcmeProvisionerCache {
  return new ChangeClearedCache<ResolvedProvisioner>(inventory, "credentials", { maxEntries: PROVISIONER_CACHE_ENTRIES, ttlMs: PROVISIONER_CACHE_TTL_MS });
}

export interface AcmeRouterOptions {
  /** told when a challenge waits for validation (the keyless validator; the database notifies it too) */
  validation?: { wake(): void };
  /** provisioner lookups kept between requests; without one, every request reads its provisioner */
  provisioners?: AcmeProvisionerCache;
}

interface AcmeContext {
  base: string;
  url: string;
  provisioner: ProvisionerRecord;
  policy: ProvisionerPolicy;
  eabRequired: boolean;
  sourceIp: string;
}

interface Signed {
  payload: unknown;
  jwk: JWK;
  /** the public key that verified the signature */
  key: KeyObject;
  account: AcmeAccountRecord | undefined;
}

const CHALLENGE_TYPES: Record<"dns" | "ip", ChallengeType[]> = { dns: ["http-01", "dns-01", "tls-alpn-01"], ip: ["http-01", "tls-alpn-01"] };

const iso = (d: Date) => d.toISOString();
const newToken = () => randomBytes(32).toString("base64url");

/** The profile an order gets when it names none: server if the provisioner allows it. */
function defaultProfile(policy: ProvisionerPolicy): ProfileName {
  return policy.profiles.includes("server" as ProfileName) ? ("server" as ProfileName) : (policy.profiles[0] as ProfileName);
}

export function acmeRouter(runtime: CaRuntime, log: Logger, options: AcmeRouterOptions = {}): Router {
  const store = runtime.inventory.acme;
  const { resolver, ...challengeDefaults } = runtime.config.challenges;
  const challengeSettings = { ...challengeDefaults, ...(resolver ? { resolver } : {}) };
  const now = () => runtime.clock.now();

  const router = express.Router({ mergeParams: true });
  router.use(express.raw({ type: "application/jose+json", limit: MAX_JWS_BYTES }));

  const nonceSweep = setInterval(() => {
    store.sweepSpentNonces(now()).catch((error: Error) => log.warn({ err: error }, "could not remove expired ACME nonces"));
  }, 5 * 60_000);
  nonceSweep.unref();

  // The nonce key is read (or made) on first use; a failed read is tried again by the next request.
  let minter: Promise<NonceMinter> | undefined;
  const nonces = (): Promise<NonceMinter> => {
    minter ??= store.nonceKey().then(
      (key) => new NonceMinter(key, NONCE_TTL_MS, now),
      (error: unknown) => {
        minter = undefined;
        throw error;
      },
    );
    return minter;
  };

  async function freshNonce(res: Response): Promise<void> {
    res.setHeader("replay-nonce", (await nonces()).mint());
    res.setHeader("cache-control", "no-store");
  }

  // Importing a JWK costs more than the signature check it serves: keep the imported key per
  // account. The account row is still read on every request (status, current key), so a key
  // change or deactivation takes effect at once on every worker and replica; an entry whose
  // thumbprint is no longer the account's is replaced, never trusted.
  const accountKeys = new Map<string, { thumbprint: string; key: KeyObject }>();
  async function importedAccountKey(account: AcmeAccountRecord): Promise<KeyObject> {
    const cached = accountKeys.get(account.id);
    if (cached?.thumbprint === account.keyThumbprint) return cached.key;
    const { key } = await accountKey(account.jwk);
    if (!cached && accountKeys.size >= ACCOUNT_KEY_CACHE_ENTRIES) accountKeys.delete(accountKeys.keys().next().value as string);
    accountKeys.set(account.id, { thumbprint: account.keyThumbprint, key });
    return key;
  }

  async function resolveProvisioner(name: string): Promise<ResolvedProvisioner | undefined> {
    const load = async (): Promise<ResolvedProvisioner | undefined> => {
      const provisioner = await store.acmeProvisionerByName(name);
      if (!provisioner) return undefined;
      const live = !provisioner.deletedAt && !provisioner.disabled;
      const policy = live ? ProvisionerPolicy.create({ name: provisioner.name, profiles: provisioner.profiles, names: provisioner.names, maxTtlSeconds: provisioner.maxTtlSeconds }) : undefined;
      return { provisioner, policy };
    };
    return options.provisioners ? options.provisioners.get(name, load) : load();
  }

  async function context(req: Request): Promise<AcmeContext> {
    const name = String(req.params.provisioner);
    const resolved = /^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) ? await resolveProvisioner(name) : undefined;
    const provisioner = resolved?.provisioner;
    if (!provisioner || provisioner.deletedAt) throw new AcmeProblem("malformed", `no ACME provisioner named '${name.slice(0, 64)}'`, { status: 404 });
    if (provisioner.disabled || !resolved.policy) throw unauthorized(`ACME provisioner '${name}' is disabled`);
    const host = req.headers.host ?? "";
    if (!/^[A-Za-z0-9.:[\]-]{1,300}$/.test(host)) throw malformed("the request has no usable Host header");
    const base = `https://${host}/acme/${name}`;
    return {
      base,
      url: `https://${host}${req.originalUrl}`,
      provisioner,
      policy: resolved.policy,
      eabRequired: provisioner.eabRequired,
      sourceIp: req.socket.remoteAddress ?? "unknown",
    };
  }

  const urls = (ctx: AcmeContext) => ({
    account: (id: string) => `${ctx.base}/acct/${id}`,
    order: (id: string) => `${ctx.base}/order/${id}`,
    authz: (id: string) => `${ctx.base}/authz/${id}`,
    challenge: (id: string) => `${ctx.base}/chall/${id}`,
    certificate: (serial: string) => `${ctx.base}/cert/${serial}`,
  });

  /**
   * Verifies a POST: JSON body, nonce, url, exactly one of jwk/kid, algorithm, signature,
   * and for kid a valid account of this provisioner. The nonce is checked (ours, not
   * expired) first, and recorded as used only once the signature verifies: a request that
   * proves no key leaves nothing in the database.
   */
  async function verify(req: Request, ctx: AcmeContext, keyFrom: "kid" | "jwk" | "either"): Promise<Signed> {
    if (!req.is("application/jose+json")) throw new AcmeProblem("malformed", "send ACME requests as Content-Type: application/jose+json", { status: 415 });
    let body: unknown;
    try {
      body = JSON.parse(Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "");
    } catch (error) {
      throw malformed("the request body is not JSON", error);
    }
    const jws = parseFlattened(body);
    const header = protectedHeader(jws);
    const nonce = header.nonce as string;
    const nonceExpires = (await nonces()).check(nonce);
    if (!nonceExpires) {
      throw new AcmeProblem(
        "badNonce",
        typeof header.nonce === "string" ? "the JWS nonce is not one of this server's or has expired; retry with the Replay-Nonce of this answer" : "the JWS protected header needs a 'nonce'",
      );
    }
    const replayed = () => new AcmeProblem("badNonce", "the JWS nonce was already used; retry with the Replay-Nonce of this answer");
    checkUrl(header, ctx.url);
    checkAlgorithm(header.alg);
    if ((header.jwk === undefined) === (header.kid === undefined)) throw malformed("the JWS protected header must have exactly one of 'jwk' and 'kid'");
    if (header.jwk !== undefined) {
      if (keyFrom === "kid") throw malformed("this request must be signed by an account key named by 'kid', not 'jwk'");
      const { jwk, key } = await accountKey(header.jwk, header.alg);
      const payload = await verifyWith(jws, key, ACCOUNT_ALGORITHMS);
      if (!(await store.spendNonce(nonce, nonceExpires))) throw replayed();
      return { payload, jwk, key, account: undefined };
    }
    if (keyFrom === "jwk") throw malformed("this request must carry its key in 'jwk', not 'kid'");
    const prefix = `${ctx.base}/acct/`;
    const kid = String(header.kid);
    const accountId = kid.startsWith(prefix) && kid.length - prefix.length <= MAX_ACCOUNT_ID_CHARS ? kid.slice(prefix.length) : undefined;
    const noAccount = () => new AcmeProblem("accountDoesNotExist", `no account ${kid.slice(0, 200)} on this ACME server`);
    if (!accountId) throw noAccount();
    // The usual case, an account this process has seen: the signature is checked against its
    // key before the one round trip that uses the nonce up and reads the account. Otherwise
    // the account is read first and the nonce used up once its key has verified.
    const cached = accountKeys.get(accountId);
    const early = cached && checkKeyFits(cached.key, header.alg) ? await verifyWith(jws, cached.key, ACCOUNT_ALGORITHMS).catch(() => NOT_VERIFIED) : NOT_VERIFIED;
    let account: AcmeAccountRecord | undefined;
    let key: KeyObject;
    let payload: unknown;
    if (early !== NOT_VERIFIED) {
      const read = await store.spendNonceReadAccount(nonce, nonceExpires, accountId);
      account = read.account;
      if (!account || account.provisionerId !== ctx.provisioner.id) throw noAccount();
      if (!read.fresh) throw replayed();
      // the cached key, unless the account changed its key meanwhile: then the current one must verify
      key = await importedAccountKey(account);
      if (key !== cached?.key) checkKeyAlgorithm(key, header.alg);
      payload = key === cached?.key ? early : await verifyWith(jws, key, ACCOUNT_ALGORITHMS);
    } else {
      account = await store.account(accountId);
      if (!account || account.provisionerId !== ctx.provisioner.id) throw noAccount();
      key = await importedAccountKey(account);
      checkKeyAlgorithm(key, header.alg);
      payload = await verifyWith(jws, key, ACCOUNT_ALGORITHMS);
      if (!(await store.spendNonce(nonce, nonceExpires))) throw replayed();
    }
    if (account.status !== "valid") throw unauthorized(`account ${kid} is ${account.status}`);
    return { payload, jwk: account.jwk as JWK, key, account };
  }

  type Handler = (req: Request, res: Response, ctx: AcmeContext) => Promise<{ status: number; body?: unknown; location?: string; links?: string[]; contentType?: string; text?: string }>;

  const handle =
    (handler: Handler) =>
    async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      let ctx: AcmeContext | undefined;
      try {
        ctx = await context(req);
        res.setHeader("link", `<${ctx.base}/directory>;rel="index"`);
        const result = await handler(req, res, ctx);
        if (req.method !== "GET" || req.path.endsWith("/new-nonce")) await freshNonce(res);
        if (result.location) res.setHeader("location", result.location);
        for (const link of result.links ?? []) res.append("link", link);
        if (result.text !== undefined)
          res
            .status(result.status)
            .type(result.contentType ?? "text/plain")
            .send(result.text);
        else if (result.body === undefined) res.status(result.status).end();
        else res.status(result.status).json(result.body);
      } catch (error) {
        try {
          await sendAcmeProblem(req, res, error, ctx);
        } catch (sendError) {
          next(sendError);
        }
      }
    };

  async function sendAcmeProblem(req: Request, res: Response, error: unknown, ctx: AcmeContext | undefined): Promise<void> {
    const problem = asProblem(error);
    if (problem.status >= 500) log.error({ err: error, path: req.path }, "ACME request failed");
    else log.info({ path: req.path, type: problem.type, detail: problem.message.slice(0, 300) }, "ACME request refused");
    // badNonce must carry a fresh nonce; every other error does too, so clients can retry.
    if (ctx) await freshNonce(res).catch(() => {});
    if (problem.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(problem.retryAfterSeconds));
    if (problem.location) res.setHeader("location", problem.location);
    res.status(problem.status).type("application/problem+json").send(JSON.stringify(problem.toJSON()));
  }

  // ── directory and nonces ───────────────────────────────────────────────

  router.get(
    "/:provisioner/directory",
    handle(async (_req, _res, ctx) => ({
      status: 200,
      body: {
        newNonce: `${ctx.base}/new-nonce`,
        newAccount: `${ctx.base}/new-account`,
        newOrder: `${ctx.base}/new-order`,
        revokeCert: `${ctx.base}/revoke-cert`,
        keyChange: `${ctx.base}/key-change`,
        renewalInfo: `${ctx.base}/renewal-info`,
        meta: {
          externalAccountRequired: ctx.eabRequired,
          // draft-ietf-acme-profiles: profile name → description
          profiles: Object.fromEntries(ctx.policy.profiles.map((p) => [p, profileDescription(p)])),
        },
      },
    })),
  );
  router.head(
    "/:provisioner/new-nonce",
    handle(async () => ({ status: 200 })),
  );
  router.get(
    "/:provisioner/new-nonce",
    handle(async () => ({ status: 204 })),
  );

  // ── accounts ───────────────────────────────────────────────────────────

  const accountView = (ctx: AcmeContext, account: AcmeAccountRecord) => ({
    status: account.status,
    contact: account.contact,
    orders: `${urls(ctx).account(account.id)}/orders`,
    createdAt: iso(account.createdAt),
  });

  router.post(
    "/:provisioner/new-account",
    handle(async (req, _res, ctx) => {
      const { payload, jwk } = await verify(req, ctx, "jwk");
      const body = objectPayload(payload, "newAccount");
      const keyThumbprint = await thumbprint(jwk);
      const existing = await store.accountByThumbprint(ctx.provisioner.id, keyThumbprint);
      if (existing) return { status: 200, body: accountView(ctx, existing), location: urls(ctx).account(existing.id) };
      if (body.onlyReturnExisting === true) throw new AcmeProblem("accountDoesNotExist", "no account holds this key (onlyReturnExisting)");
      const contact = contacts(body.contact);
      let eabKid: string | undefined;
      if (body.externalAccountBinding !== undefined) eabKid = await verifyEab(body.externalAccountBinding, ctx, jwk);
      else if (ctx.eabRequired)
        throw new AcmeProblem(
          "externalAccountRequired",
          `ACME provisioner '${ctx.provisioner.name}' requires external account binding; ask its operator for a key (pki provisioner eab ${ctx.provisioner.name})`,
        );
      const limits = runtime.config.acme.rateLimits;
      try {
        const account = await store.createAccount(
          { provisionerId: ctx.provisioner.id, keyThumbprint, jwk: jwk as Record<string, unknown>, contact, eabKid, createdFrom: sourceNetwork(ctx.sourceIp), now: now() },
          { since: new Date(now().getTime() - HOUR_MS), perSource: limits.newAccountsPerAddressHour, perProvisioner: limits.newAccountsPerProvisionerHour },
          { actor: `acme:${ctx.provisioner.name}`, action: "acme.account.create", sourceIp: ctx.sourceIp, details: { contact } },
        );
        return { status: 201, body: accountView(ctx, account), location: urls(ctx).account(account.id) };
      } catch (error) {
        if (error instanceof AcmeAccountLimitError) {
          checkRate("new accounts", error.counts.source, limits.newAccountsPerAddressHour, `address ${sourceNetwork(ctx.sourceIp)}`);
          checkRate("new accounts", error.counts.provisioner, limits.newAccountsPerProvisionerHour, `ACME provisioner '${ctx.provisioner.name}'`);
        }
        if (error instanceof AcmeEabKeyUnusableError) throw unauthorized(error.message);
        if (error instanceof AcmeAccountKeyInUseError) {
          const raced = await store.accountByThumbprint(ctx.provisioner.id, keyThumbprint);
          if (raced) return { status: 200, body: accountView(ctx, raced), location: urls(ctx).account(raced.id) };
        }
        throw error;
      }
    }),
  );

  async function verifyEab(binding: unknown, ctx: AcmeContext, outerJwk: JWK): Promise<string> {
    const jws = parseFlattened(binding);
    const header = protectedHeader(jws);
    if (typeof header.alg !== "string" || !(EAB_ALGORITHMS as readonly string[]).includes(header.alg))
      throw new AcmeProblem("badSignatureAlgorithm", `externalAccountBinding must be signed with ${EAB_ALGORITHMS.join(", ")}`);
    if (header.nonce !== undefined) throw malformed("externalAccountBinding must not carry a nonce");
    if (header.url !== `${ctx.base}/new-account`) throw unauthorized("externalAccountBinding's 'url' is not this server's newAccount URL");
    const kid = typeof header.kid === "string" && header.kid.length <= 128 ? header.kid : undefined;
    const hmacKey = kid ? await store.unboundEabKey(ctx.provisioner.id, kid) : undefined;
    if (!kid || !hmacKey) throw unauthorized(`external account key '${String(header.kid).slice(0, 64)}' is unknown or already bound to an account`);
    const payload = await verifyWith(jws, new Uint8Array(hmacKey), EAB_ALGORITHMS).catch((error: unknown) => {
      throw unauthorized(`externalAccountBinding does not verify with key '${kid}': ${(error as Error).message}`);
    });
    const bound = await accountKey(payload).catch(() => undefined);
    // The binding must be over this very account key.
    if (!bound || (await thumbprint(bound.jwk)) !== (await thumbprint(outerJwk))) throw malformed("externalAccountBinding's payload is not the account key of this request");
    return kid;
  }

  router.post(
    "/:provisioner/acct/:id",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      if (!account || account.id !== req.params.id) throw unauthorized("the request is signed by a different account than the one it names");
      if (payload === undefined) return { status: 200, body: accountView(ctx, account), location: urls(ctx).account(account.id) };
      const body = objectPayload(payload, "account update");
      if (body.status !== undefined && body.status !== "deactivated") throw malformed("an account's status can only be changed to 'deactivated'");
      const changes = { contact: body.contact === undefined ? undefined : contacts(body.contact), status: body.status === "deactivated" ? ("deactivated" as const) : undefined };
      if (changes.contact === undefined && changes.status === undefined) return { status: 200, body: accountView(ctx, account) };
      const updated = await store.updateAccount(account.id, changes, {
        actor: actorOf(ctx, account),
        action: changes.status ? "acme.account.deactivate" : "acme.account.update",
        sourceIp: ctx.sourceIp,
      });
      if (!updated) throw unauthorized(`account ${account.id} is no longer valid`);
      return { status: 200, body: accountView(ctx, updated) };
    }),
  );

  router.post(
    "/:provisioner/acct/:id/orders",
    handle(async (req, _res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      if (!account || account.id !== req.params.id) throw unauthorized("an account may only list its own orders");
      const cursor = typeof req.query.before === "string" && !Number.isNaN(Date.parse(req.query.before)) ? new Date(req.query.before) : undefined;
      const page = await store.orderIds(account.id, ORDERS_PAGE + 1, cursor);
      const links: string[] = [];
      if (page.length > ORDERS_PAGE) links.push(`<${urls(ctx).account(account.id)}/orders?before=${encodeURIComponent(iso(page[ORDERS_PAGE - 1]!.createdAt))}>;rel="next"`);
      return { status: 200, body: { orders: page.slice(0, ORDERS_PAGE).map((o) => urls(ctx).order(o.id)) }, links };
    }),
  );

  router.post(
    "/:provisioner/key-change",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      if (!account) throw unauthorized("key change must be signed by the account's current key");
      const inner = parseFlattened(payload);
      const header = protectedHeader(inner);
      checkAlgorithm(header.alg);
      if (header.kid !== undefined || header.jwk === undefined) throw malformed("the inner key-change JWS must carry the new key in 'jwk'");
      if (header.nonce !== undefined) throw malformed("the inner key-change JWS must not carry a nonce");
      if (header.url !== ctx.url) throw malformed("the inner key-change JWS's 'url' must equal the outer one");
      const { jwk: newJwk, key } = await accountKey(header.jwk, header.alg);
      const body = objectPayload(await verifyWith(inner, key, ACCOUNT_ALGORITHMS), "key change");
      if (body.account !== urls(ctx).account(account.id)) throw malformed("the key-change 'account' is not the account that signed the request");
      const oldKey = await accountKey(body.oldKey).catch(() => undefined);
      if (!oldKey || (await thumbprint(oldKey.jwk)) !== account.keyThumbprint) throw malformed("the key-change 'oldKey' is not the account's current key");
      const newThumbprint = await thumbprint(newJwk);
      const holder = await store.accountByThumbprint(ctx.provisioner.id, newThumbprint);
      if (holder) throw new AcmeProblem("conflict", "the new key is already in use by an account", { location: urls(ctx).account(holder.id) });
      const changed = await store.changeAccountKey(account.id, newJwk as Record<string, unknown>, newThumbprint, {
        actor: actorOf(ctx, account),
        action: "acme.account.key-change",
        sourceIp: ctx.sourceIp,
      });
      if (!changed) throw new AcmeProblem("conflict", "the new key is already in use by an account");
      return { status: 200, body: accountView(ctx, { ...account, jwk: newJwk as Record<string, unknown>, keyThumbprint: newThumbprint }) };
    }),
  );

  // ── orders ─────────────────────────────────────────────────────────────

  function orderView(ctx: AcmeContext, order: AcmeOrderRecord) {
    return {
      status: order.status,
      expires: iso(order.expiresAt),
      identifiers: order.identifiers,
      authorizations: order.authorizationIds.map((id) => urls(ctx).authz(id)),
      finalize: `${urls(ctx).order(order.id)}/finalize`,
      profile: order.profile,
      ...(order.replacesSerial ? { replaces: order.replacesSerial } : {}),
      ...(order.certificateSerial ? { certificate: urls(ctx).certificate(order.certificateSerial) } : {}),
      ...(order.error ? { error: order.error } : {}),
    };
  }

  function checkRate(kind: "orders" | "failed validations" | "new accounts", counted: { count: number; oldest: Date | null }, limit: number, who: string): void {
    const { count: used, oldest } = counted;
    if (used < limit) return;
    const retryAfter = Math.max(1, Math.ceil(((oldest?.getTime() ?? now().getTime()) + HOUR_MS - now().getTime()) / 1000));
    throw new AcmeProblem("rateLimited", `${who} has reached its limit of ${limit} ${kind} per hour; retry after ${retryAfter} s`, { retryAfterSeconds: retryAfter });
  }

  router.post(
    "/:provisioner/new-order",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      if (!account) throw unauthorized("orders need an account");
      const body = objectPayload(payload, "newOrder");
      if (body.notBefore !== undefined || body.notAfter !== undefined) throw malformed("notBefore/notAfter are not supported: the profile and the provisioner decide a certificate's lifetime");
      const identifiers = normaliseIdentifiers(body.identifiers);
      rejectOutsidePolicy(ctx, identifiers);
      let profile = defaultProfile(ctx.policy);
      if (body.profile !== undefined) {
        if (typeof body.profile !== "string" || !isProfileName(body.profile) || !ctx.policy.profiles.includes(body.profile))
          throw new AcmeProblem("invalidProfile", `profile '${String(body.profile).slice(0, 40)}' is not offered here; use one of ${ctx.policy.profiles.join(", ")} (directory meta.profiles)`);
        profile = body.profile;
      }
      const replacesSerial = body.replaces === undefined ? undefined : await replacedSerial(ctx, account, body.replaces);
      const limits = runtime.config.acme.rateLimits;
      const since = new Date(now().getTime() - HOUR_MS);
      // the hourly limits are counted by the statement that creates the order
      const { order, counts } = await store.createOrder(
        { accountId: account.id, provisionerId: ctx.provisioner.id, identifiers, profile, replacesSerial, expiresAt: new Date(now().getTime() + ORDER_TTL_MS) },
        identifiers.map((identifier) => {
          const wildcard = identifier.type === "dns" && identifier.value.startsWith("*.");
          const types = wildcard ? (["dns-01"] as ChallengeType[]) : CHALLENGE_TYPES[identifier.type];
          return { identifier: wildcard ? { type: "dns", value: identifier.value.slice(2) } : identifier, wildcard, challenges: types.map((type) => ({ type, token: newToken() })) };
        }),
        { since, perAccount: limits.ordersPerAccountHour, perProvisioner: limits.ordersPerProvisionerHour },
      );
      checkRate("orders", counts.account, limits.ordersPerAccountHour, `account ${account.id}`);
      checkRate("orders", counts.provisioner, limits.ordersPerProvisionerHour, `ACME provisioner '${ctx.provisioner.name}'`);
      if (!order) throw new AcmeProblem("rateLimited", "the order limits were reached; retry shortly", { retryAfterSeconds: 5 });
      acmeOrders.inc({ provisioner: ctx.provisioner.name, state: "pending" });
      return { status: 201, body: orderView(ctx, order), location: urls(ctx).order(order.id) };
    }),
  );

  /** Asks the provisioner's policy about each name now, so a refusal comes before any challenge. */
  function rejectOutsidePolicy(ctx: AcmeContext, identifiers: AcmeIdentifier[]): void {
    const subproblems: Subproblem[] = [];
    for (const identifier of identifiers) {
      try {
        ctx.policy.authorizeNames({ commonName: undefined, sans: [sanOf(identifier)] });
      } catch (error) {
        if (!(error instanceof CaError)) throw error;
        subproblems.push({ type: `${ACME_ERROR}rejectedIdentifier`, detail: error.message, identifier });
      }
    }
    if (subproblems.length) {
      throw new AcmeProblem(
        "rejectedIdentifier",
        subproblems.length === 1 ? (subproblems[0] as Subproblem).detail : `${subproblems.length} identifiers are outside what ACME provisioner '${ctx.provisioner.name}' may issue for`,
        { subproblems },
      );
    }
  }

  async function replacedSerial(ctx: AcmeContext, account: AcmeAccountRecord, certId: unknown): Promise<string> {
    const serial = parseCertId(certId);
    const record = await runtime.inventory.certificates.get(serial);
    const origin = record && (await store.certificateOrigin(serial));
    if (!record || !origin || origin.accountId !== account.id) throw malformed(`'replaces' names no certificate issued to this account`);
    const issuer = runtime.keyring.get(record.issuerId);
    if (issuer && !parseCertId.matchesIssuer(certId, issuer.facts.subjectKeyId)) throw malformed("'replaces' names a certificate by the wrong authority key identifier");
    if (record.successorSerial || (await store.replacementPending(serial))) throw new AcmeProblem("alreadyReplaced", `certificate ${serial} already has a replacement order or successor`);
    void ctx;
    return serial;
  }

  async function ownOrder(req: Request, ctx: AcmeContext, account: AcmeAccountRecord | undefined): Promise<AcmeOrderRecord> {
    const order = await store.order(String(req.params.id));
    if (!order || !account || order.accountId !== account.id) throw new AcmeProblem("malformed", "no such order for this account", { status: 404 });
    if ((order.status === "pending" || order.status === "ready") && order.expiresAt <= now()) {
      await store.setOrderStatus(order.id, order.status, "invalid", { error: { type: `${ACME_ERROR}malformed`, detail: "the order expired" } });
      return { ...order, status: "invalid" };
    }
    void ctx;
    return order;
  }

  router.post(
    "/:provisioner/order/:id",
    handle(async (req, res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      const order = await ownOrder(req, ctx, account);
      if (order.status === "processing") res.setHeader("retry-after", "1");
      return { status: 200, body: orderView(ctx, order) };
    }),
  );

  router.post(
    "/:provisioner/order/:id/finalize",
    handle(async (req, _res, ctx) => {
      const { payload, account, key: accountPublicKey } = await verify(req, ctx, "kid");
      // ready → processing in the statement that reads the order (the usual case); any other
      // state is explained from a plain read
      const order = account ? await store.startFinalizing(String(req.params.id), account.id, now()) : undefined;
      if (!order) {
        const current = await ownOrder(req, ctx, account);
        if (current.status === "ready") throw new AcmeProblem("orderNotReady", "the order is already being finalized");
        throw new AcmeProblem("orderNotReady", `the order is ${current.status}, not ready: ${current.status === "pending" ? "complete its authorizations first" : "it cannot be finalized"}`);
      }
      let csr: ReturnType<typeof parseCsr>;
      try {
        csr = csrOfOrder(payload, order, accountPublicKey);
      } catch (error) {
        // a CSR the order cannot take leaves the order ready for a better one
        await store.setOrderStatus(order.id, "processing", "ready").catch((revertError: Error) => log.error({ err: revertError, order: order.id }, "could not put an ACME order back to ready"));
        throw error;
      }
      try {
        const issued = await runtime.authority.issue({
          csr,
          profile: order.profile as ProfileName,
          requester: requesterFor(ctx, account as AcmeAccountRecord),
          predecessorSerial: order.replacesSerial ?? undefined,
        });
        await store.setOrderStatus(order.id, "processing", "valid", { certificateSerial: issued.serial });
        acmeOrders.inc({ provisioner: ctx.provisioner.name, state: "valid" });
        return { status: 200, body: orderView(ctx, { ...order, status: "valid", certificateSerial: issued.serial }), location: urls(ctx).order(order.id) };
      } catch (error) {
        const problem = issuanceProblem(error);
        if (problem.status >= 500) {
          // the order may be finalized again once the CA is back
          await store.setOrderStatus(order.id, "processing", "ready");
        } else {
          await store.setOrderStatus(order.id, "processing", "invalid", { error: { type: ACME_ERROR + problem.type, detail: problem.message } });
          acmeOrders.inc({ provisioner: ctx.provisioner.name, state: "invalid" });
        }
        throw problem;
      }
    }),
  );

  /** The requester the authority checks names, profile and lifetime against (the provisioner's policy). */
  function requesterFor(ctx: AcmeContext, account: AcmeAccountRecord): Requester {
    return { kind: "provisioner", actor: actorOf(ctx, account), provisioner: ctx.provisioner, sourceIp: ctx.sourceIp };
  }

  // ── authorizations and challenges ─────────────────────────────────────

  const challengeView = (ctx: AcmeContext, c: AcmeChallengeRecord) => ({
    type: c.type,
    url: urls(ctx).challenge(c.id),
    status: c.status,
    token: c.token,
    ...(c.validatedAt && c.status === "valid" ? { validated: iso(c.validatedAt) } : {}),
    ...(c.error ? { error: c.error } : {}),
  });

  const authzView = (ctx: AcmeContext, a: AcmeAuthorizationRecord) => ({
    identifier: a.identifier,
    status: a.status,
    expires: iso(a.expiresAt),
    // once one challenge is valid, only that one is listed (RFC 8555 §7.1.4)
    challenges: (a.status === "valid" ? a.challenges.filter((c) => c.status === "valid") : a.challenges).map((c) => challengeView(ctx, c)),
    ...(a.wildcard ? { wildcard: true } : {}),
  });

  async function ownAuthorization(id: string, account: AcmeAccountRecord | undefined): Promise<AcmeAuthorizationRecord> {
    const authz = await store.authorization(id);
    if (!authz || !account || authz.accountId !== account.id) throw new AcmeProblem("malformed", "no such authorization for this account", { status: 404 });
    return authz;
  }

  router.post(
    "/:provisioner/authz/:id",
    handle(async (req, res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      let authz = await ownAuthorization(String(req.params.id), account);
      // A validation running far past its deadline was lost with the process that ran it:
      // the authorization fails rather than waiting forever (the client may order again).
      const staleBefore = now().getTime() - STALE_VALIDATION_FACTOR * challengeSettings.timeoutMs;
      const lost = authz.challenges.filter((c) => c.status === "processing" && c.validatedAt !== null && c.validatedAt.getTime() < staleBefore).map((c) => c.id);
      for (const id of lost) {
        await store.finishChallenge(
          id,
          { ok: false, problem: { type: `${ACME_ERROR}serverInternal`, detail: "the validation was interrupted (the server restarted); place a new order", status: 500 } },
          now(),
        );
      }
      if (lost.length) authz = await ownAuthorization(authz.id, account);
      if (payload !== undefined) {
        const body = objectPayload(payload, "authorization update");
        if (body.status !== "deactivated") throw malformed("an authorization can only be updated to status 'deactivated'");
        if (!(await store.deactivateAuthorization(authz.id))) throw malformed(`the authorization is ${authz.status} and cannot be deactivated`);
        authz = (await store.authorization(authz.id)) as AcmeAuthorizationRecord;
      }
      // a client polling a validation in flight is told when to look again (RFC 8555 §7.5.1)
      if (authz.status === "pending" && authz.challenges.some((c) => c.status === "processing")) res.setHeader("retry-after", "1");
      return { status: 200, body: authzView(ctx, authz) };
    }),
  );

  router.post(
    "/:provisioner/chall/:id",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      const challengeId = String(req.params.id);
      const authz = await store.authorizationOfChallenge(challengeId);
      const challenge = authz?.challenges.find((c) => c.id === challengeId);
      if (!authz || !challenge || !account || challenge.accountId !== account.id) throw new AcmeProblem("malformed", "no such challenge for this account", { status: 404 });
      const up = `<${urls(ctx).authz(challenge.authorizationId)}>;rel="up"`;
      // An empty object asks for validation; POST-as-GET only reads.
      if (payload === undefined || challenge.status !== "pending") return { status: 200, body: challengeView(ctx, challenge), links: [up] };
      objectPayload(payload, "challenge response");
      const limits = runtime.config.acme.rateLimits;
      const since = new Date(now().getTime() - HOUR_MS);
      // the hourly limits and the bounds on waiting validations are counted by the statement that starts it
      const { started, counts } = await store.startChallengeWithinLimits(
        challenge.id,
        now(),
        { accountId: account.id, provisionerId: ctx.provisioner.id },
        {
          since,
          perAccount: limits.failedValidationsPerAccountHour,
          perProvisioner: limits.failedValidationsPerProvisionerHour,
          pendingPerAccount: VALIDATION_LIMITS.pendingPerAccount,
          pendingPerProvisioner: VALIDATION_LIMITS.pendingPerProvisioner,
        },
      );
      const retryAfterSeconds = Math.ceil(challengeSettings.timeoutMs / 1000);
      if (!started && counts.accountPending >= VALIDATION_LIMITS.pendingPerAccount)
        throw new AcmeProblem("rateLimited", `this account already has ${VALIDATION_LIMITS.pendingPerAccount} validations running or waiting; poll them, then retry`, { retryAfterSeconds });
      if (!started && counts.provisionerPending >= VALIDATION_LIMITS.pendingPerProvisioner)
        throw new AcmeProblem("rateLimited", `this ACME provisioner already has ${VALIDATION_LIMITS.pendingPerProvisioner} validations running or waiting; retry shortly`, { retryAfterSeconds });
      checkRate("failed validations", counts.account, limits.failedValidationsPerAccountHour, `account ${account.id} (validations still running count too)`);
      if (counts.accountFailed > 0)
        checkRate("failed validations", counts.provisioner, limits.failedValidationsPerProvisionerHour, `ACME provisioner '${ctx.provisioner.name}' (accounts without failures go on)`);
      if (!started) return { status: 200, body: challengeView(ctx, (await store.challenge(challenge.id)) ?? challenge), links: [up] };
      // Validated after this answer, by the keyless validator: the client polls the authorization (RFC 8555 §7.5.1).
      options.validation?.wake();
      return { status: 200, body: challengeView(ctx, { ...challenge, status: "processing" }), links: [up] };
    }),
  );

  // ── certificates ───────────────────────────────────────────────────────

  router.post(
    "/:provisioner/cert/:serial",
    handle(async (req, _res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      const serial = String(req.params.serial);
      const stored = /^[0-9a-f]{2,40}$/.test(serial) ? await store.orderCertificate(serial) : undefined;
      if (!stored || !account || stored.accountId !== account.id) throw new AcmeProblem("malformed", "no such certificate for this account", { status: 404 });
      const issuer = stored.issuerId === null ? undefined : runtime.keyring.get(stored.issuerId);
      if (!stored.der || !issuer) throw new AcmeProblem("serverInternal", `certificate ${serial} or its issuer is not available`, { status: 500 });
      // leaf, then the intermediates; the root stays out (clients must already trust it)
      const pem = [toPem(stored.der), ...issuer.chain.slice(0, -1).map((der) => toPem(der))].join("");
      return { status: 200, text: pem, contentType: "application/pem-certificate-chain" };
    }),
  );

  router.post(
    "/:provisioner/revoke-cert",
    handle(async (req, _res, ctx) => {
      const { payload, jwk, account } = await verify(req, ctx, "either");
      const body = objectPayload(payload, "revokeCert");
      if (typeof body.certificate !== "string") throw malformed("revokeCert needs 'certificate': the DER certificate in base64url");
      const der = Buffer.from(body.certificate, "base64url");
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(der);
      } catch (error) {
        throw malformed("'certificate' is not a DER certificate", error);
      }
      // X509Certificate ignores bytes after the certificate; a request carrying any is not the DER of one certificate.
      if (!cert.raw.equals(der)) throw malformed("'certificate' has bytes after the DER certificate");
      const serial = cert.serialNumber.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, "");
      const record = await runtime.inventory.certificates.get(serial);
      if (!record?.der?.equals(cert.raw)) throw unauthorized("this CA did not issue that certificate");
      if (account) {
        const origin = await store.certificateOrigin(serial);
        if (origin?.accountId !== account.id) throw unauthorized("the account that signed this request did not order that certificate");
      } else {
        const spki = (k: { export(o: { type: "spki"; format: "der" }): Buffer }) => k.export({ type: "spki", format: "der" });
        const { key } = await accountKey(jwk).catch(() => ({ key: undefined }));
        if (!key || !spki(key).equals(spki(cert.publicKey))) throw unauthorized("the request is signed neither by the ordering account nor by the certificate's key");
      }
      let reason: string | undefined;
      if (body.reason !== undefined) {
        const name = typeof body.reason === "number" ? REASON_NAMES[body.reason] : undefined;
        if (!name || !Object.hasOwn(REVOCATION_REASONS, name))
          throw new AcmeProblem("badRevocationReason", `revocation reason ${String(body.reason).slice(0, 10)} is not accepted; use one of ${Object.values(REVOCATION_REASONS).join(", ")}`);
        reason = name;
      }
      try {
        await revokeCertificate(runtime, { serial, reason, actor: account ? actorOf(ctx, account) : `acme:${ctx.provisioner.name}/certificate-key`, sourceIp: ctx.sourceIp });
      } catch (error) {
        if (error instanceof CaError && error.kind === "conflict") throw new AcmeProblem("alreadyRevoked", error.message);
        throw error;
      }
      return { status: 200 };
    }),
  );

  // ── renewal information (RFC 9773) ─────────────────────────────────────

  router.get(
    "/:provisioner/renewal-info/:certId",
    handle(async (req, res, _ctx) => {
      const certId = String(req.params.certId);
      const serial = parseCertId(certId);
      const record = await runtime.inventory.certificates.get(serial);
      const issuer = record && runtime.keyring.get(record.issuerId);
      if (!record || !issuer || !parseCertId.matchesIssuer(certId, issuer.facts.subjectKeyId)) throw new AcmeProblem("malformed", "no certificate by that CertID", { status: 404 });
      res.setHeader("retry-after", String(RENEWAL_INFO_RETRY_SECONDS));
      // The keyring may hold the issuer as it was before an emergency revocation: ask the inventory.
      const issuerNow = await runtime.inventory.issuers.get(record.issuerId);
      const window = renewalWindow(record, { issuerRevoked: !!issuerNow?.revokedAt, renewAtFraction: runtime.config.scheduler.renewAtFraction, now: now() });
      return { status: 200, body: { suggestedWindow: { start: iso(window.start), end: iso(window.end) } } };
    }),
  );

  // body-parser's refusals (too large, bad charset) as ACME problems
  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    sendAcmeProblem(req, res, error, undefined).catch(next);
  });
  router.use((req, res) => {
    res
      .status(404)
      .type("application/problem+json")
      .send(JSON.stringify({ type: `${ACME_ERROR}malformed`, detail: `no ACME resource ${req.method} ${req.path.slice(0, 200)}`, status: 404 }));
  });
  return router;
}

const actorOf = (ctx: AcmeContext, account: AcmeAccountRecord) => `acme:${ctx.provisioner.name}/${account.id}`;

function profileDescription(profile: string): string {
  const descriptions: Record<string, string> = {
    server: "TLS server certificate (serverAuth)",
    client: "TLS client certificate (clientAuth)",
    mtls: "mutual TLS: serverAuth and clientAuth",
  };
  return descriptions[profile] ?? profile;
}

/** The finalize payload's CSR, when it names exactly the order's identifiers (badCSR otherwise). */
function csrOfOrder(payload: unknown, order: AcmeOrderRecord, accountPublicKey: KeyObject): ReturnType<typeof parseCsr> {
  const body = objectPayload(payload, "finalize");
  if (typeof body.csr !== "string" || !/^[A-Za-z0-9_-]+$/.test(body.csr)) throw malformed("finalize needs 'csr': the DER CSR in base64url");
  let csr: ReturnType<typeof parseCsr>;
  let names: ReturnType<typeof namesOf>;
  try {
    csr = parseCsr(Buffer.from(body.csr, "base64url"));
    names = namesOf(csr);
  } catch (error) {
    throw new AcmeProblem("badCSR", (error as Error).message, { cause: error });
  }
  // RFC 8555 §11.1: whoever held the certificate's key (a server, a load balancer) would otherwise control the account.
  if (csr.publicKeySpki.equals(accountPublicKey.export({ type: "spki", format: "der" }))) throw new AcmeProblem("badCSR", "the CSR's key is the account key; use a separate key for the certificate");
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

function objectPayload(payload: unknown, what: string): Record<string, unknown> {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw malformed(`the ${what} payload must be a JSON object`);
  return payload as Record<string, unknown>;
}

function contacts(raw: unknown): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > MAX_CONTACTS) throw new AcmeProblem("invalidContact", `'contact' must be an array of at most ${MAX_CONTACTS} mailto: URLs`);
  return raw.map((c) => {
    if (typeof c !== "string" || c.length > MAX_CONTACT_CHARS) throw new AcmeProblem("invalidContact", `each contact must be a mailto: URL of at most ${MAX_CONTACT_CHARS} characters`);
    if (!c.startsWith("mailto:")) throw new AcmeProblem("unsupportedContact", `contact '${c.slice(0, 60)}' is not a mailto: URL`);
    if (!/^mailto:[^\s@,?%]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/.test(c)) throw new AcmeProblem("invalidContact", `contact '${c.slice(0, 60)}' is not a single plain e-mail address`);
    return c;
  });
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

function asProblem(error: unknown): AcmeProblem {
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
  if (e?.type === "entity.too.large") return new AcmeProblem("malformed", `the request body is larger than ${MAX_JWS_BYTES} bytes`, { status: 413 });
  return new AcmeProblem("serverInternal", "the server could not complete this request", { status: 500, cause: error });
}
