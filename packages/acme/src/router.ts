// The ACME server (RFC 8555) of one provisioner, mounted at /acme/<provisioner>/ on the
// HTTPS issuing listener. It authenticates accounts and proves control of names; the
// certificate itself comes from runtime.authority.issue, which applies the provisioner's
// policy, lints, records intent and writes the inventory like for every other front end.
import type { KeyObject } from "node:crypto";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { JWK } from "jose";
import type { CaRuntime } from "@pki/authority";
import { type AcmeAccountRecord, type AcmeAuthorizationRecord, type AcmeChallengeRecord, type AcmeOrderRecord, type AcmeProvisionerRecord, ChangeClearedCache, type Inventory } from "@pki/db";
import type { Logger } from "@pki/logger";
import { ProvisionerPolicy } from "@pki/policy";
import { ACCOUNT_ALGORITHMS, EAB_ALGORITHMS, accountKey, checkAlgorithm, checkKeyAlgorithm, checkUrl, parseFlattened, protectedHeader, thumbprint, verifyWith } from "./jws.ts";
import { NonceMinter } from "./nonces.ts";
import { AcmeProblem, ACME_ERROR, malformed, unauthorized } from "./problems.ts";
import { AcmeAccounts, type AcmeServer } from "./accounts.ts";
import { AcmeOrders, type AcmeRequester, asProblem } from "./orders.ts";

export const MAX_JWS_BYTES = 64 * 1024;
const NONCE_TTL_MS = 30 * 60_000;
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
  provisioner: AcmeProvisionerRecord;
  policy: ProvisionerPolicy;
  sourceIp: string;
}

interface Signed {
  payload: unknown;
  jwk: JWK;
  /** the public key that verified the signature */
  key: KeyObject;
  account: AcmeAccountRecord | undefined;
}

const iso = (d: Date) => d.toISOString();

export function acmeRouter(runtime: CaRuntime, log: Logger, options: AcmeRouterOptions = {}): Router {
  const store = runtime.inventory.acme;
  const now = () => runtime.clock.now();
  const orders = new AcmeOrders(runtime, log, options.validation);
  const accounts = new AcmeAccounts(runtime, orders);

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
    const problem = asProblem(error, MAX_JWS_BYTES);
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
          externalAccountRequired: ctx.provisioner.eabRequired,
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

  const server = (ctx: AcmeContext): AcmeServer => ({ provisioner: ctx.provisioner, sourceIp: ctx.sourceIp });

  router.post(
    "/:provisioner/new-account",
    handle(async (req, _res, ctx) => {
      const { payload, jwk } = await verify(req, ctx, "jwk");
      const body = objectPayload(payload, "newAccount");
      const eabKid = body.externalAccountBinding === undefined ? undefined : await verifyEab(body.externalAccountBinding, ctx, jwk);
      const { account, created } = await accounts.register(server(ctx), {
        jwk: jwk as Record<string, unknown>,
        keyThumbprint: await thumbprint(jwk),
        contact: body.contact,
        onlyReturnExisting: body.onlyReturnExisting === true,
        eabKid,
      });
      return { status: created ? 201 : 200, body: accountView(ctx, account), location: urls(ctx).account(account.id) };
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
      return { status: 200, body: accountView(ctx, await accounts.update(server(ctx), account, { contact: body.contact, status: body.status })) };
    }),
  );

  router.post(
    "/:provisioner/acct/:id/orders",
    handle(async (req, _res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      if (!account || account.id !== req.params.id) throw unauthorized("an account may only list its own orders");
      const page = await accounts.orderPage(account, req.query.before);
      const links = page.next ? [`<${urls(ctx).account(account.id)}/orders?before=${encodeURIComponent(iso(page.next))}>;rel="next"`] : [];
      return { status: 200, body: { orders: page.orderIds.map((id) => urls(ctx).order(id)) }, links };
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
      const changed = await accounts.changeKey(server(ctx), account, { jwk: newJwk as Record<string, unknown>, thumbprint: await thumbprint(newJwk) }, urls(ctx).account);
      return { status: 200, body: accountView(ctx, changed) };
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

  const requester = (ctx: AcmeContext, account: AcmeAccountRecord): AcmeRequester => ({ provisioner: ctx.provisioner, policy: ctx.policy, account, sourceIp: ctx.sourceIp });

  router.post(
    "/:provisioner/new-order",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      const body = objectPayload(payload, "newOrder");
      const order = await orders.newOrder(requester(ctx, signedBy(account)), {
        identifiers: body.identifiers,
        profile: body.profile,
        replaces: body.replaces,
        notBefore: body.notBefore,
        notAfter: body.notAfter,
      });
      return { status: 201, body: orderView(ctx, order), location: urls(ctx).order(order.id) };
    }),
  );

  router.post(
    "/:provisioner/order/:id",
    handle(async (req, res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      const order = await orders.order(signedBy(account), String(req.params.id));
      if (order.status === "processing") res.setHeader("retry-after", "1");
      return { status: 200, body: orderView(ctx, order) };
    }),
  );

  router.post(
    "/:provisioner/order/:id/finalize",
    handle(async (req, _res, ctx) => {
      const { payload, account, key } = await verify(req, ctx, "kid");
      const body = objectPayload(payload, "finalize");
      const order = await orders.finalize(requester(ctx, signedBy(account)), { orderId: String(req.params.id), csr: body.csr, accountKey: key });
      return { status: 200, body: orderView(ctx, order), location: urls(ctx).order(order.id) };
    }),
  );

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

  router.post(
    "/:provisioner/authz/:id",
    handle(async (req, res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      let deactivate: { deactivate: true } | undefined;
      if (payload !== undefined) {
        if (objectPayload(payload, "authorization update").status !== "deactivated") throw malformed("an authorization can only be updated to status 'deactivated'");
        deactivate = { deactivate: true };
      }
      const authz = await orders.authorization(signedBy(account), String(req.params.id), deactivate);
      // a client polling a validation in flight is told when to look again (RFC 8555 §7.5.1)
      if (authz.status === "pending" && authz.challenges.some((c) => c.status === "processing")) res.setHeader("retry-after", "1");
      return { status: 200, body: authzView(ctx, authz) };
    }),
  );

  router.post(
    "/:provisioner/chall/:id",
    handle(async (req, _res, ctx) => {
      const { payload, account } = await verify(req, ctx, "kid");
      const { challenge } = await orders.challenge(signedBy(account), String(req.params.id));
      const up = `<${urls(ctx).authz(challenge.authorizationId)}>;rel="up"`;
      // An empty object asks for validation; POST-as-GET only reads.
      if (payload === undefined) return { status: 200, body: challengeView(ctx, challenge), links: [up] };
      objectPayload(payload, "challenge response");
      const now = await orders.respondToChallenge(requester(ctx, signedBy(account)), challenge);
      return { status: 200, body: challengeView(ctx, now), links: [up] };
    }),
  );

  // ── certificates ───────────────────────────────────────────────────────

  router.post(
    "/:provisioner/cert/:serial",
    handle(async (req, _res, ctx) => {
      const { account } = await verify(req, ctx, "kid");
      return { status: 200, text: await accounts.certificateChain(signedBy(account), String(req.params.serial)), contentType: "application/pem-certificate-chain" };
    }),
  );

  router.post(
    "/:provisioner/revoke-cert",
    handle(async (req, _res, ctx) => {
      const { payload, key, account } = await verify(req, ctx, "either");
      const body = objectPayload(payload, "revokeCert");
      await accounts.revoke(server(ctx), { certificate: body.certificate, reason: body.reason, account, signingKey: key });
      return { status: 200 };
    }),
  );

  // ── renewal information (RFC 9773) ─────────────────────────────────────

  router.get(
    "/:provisioner/renewal-info/:certId",
    handle(async (req, res, _ctx) => {
      const window = await orders.renewalInfo(String(req.params.certId));
      res.setHeader("retry-after", String(RENEWAL_INFO_RETRY_SECONDS));
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

function profileDescription(profile: string): string {
  const descriptions: Record<string, string> = {
    server: "TLS server certificate (serverAuth)",
    client: "TLS client certificate (clientAuth)",
    mtls: "mutual TLS: serverAuth and clientAuth",
  };
  return descriptions[profile] ?? profile;
}

function objectPayload(payload: unknown, what: string): Record<string, unknown> {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw malformed(`the ${what} payload must be a JSON object`);
  return payload as Record<string, unknown>;
}

/** The account a kid-signed request was verified for (verify refuses a kid request without one). */
function signedBy(account: AcmeAccountRecord | undefined): AcmeAccountRecord {
  if (!account) throw unauthorized("this request needs an account");
  return account;
}
