// The OCSP responder: answers from pre-signed responses held in memory, backed by the
// database, and holds no CA keys. Any number can run: each learns new and re-signed
// responses from ocsp_responses.updated_at when the pre-signer's commit notifies it
// (PostgreSQL LISTEN/NOTIFY; polling as a safety net, or alone on the embedded database),
// and in the all-in-one process at once from the in-process signer. Live signing (nonces echoed, several certificates in one
// request, serials we never issued) needs the delegated responder keys and is only
// available where an OcspSigner runs in the same process.
import type { Config } from "@pki/config";
import { ChangeFollower, type OcspInventory, type OcspResponseRecord } from "@pki/db";
import type { Logger } from "@pki/logger";
import { MAX_NONCE_BYTES, MalformedOcspRequest, OCSPResponseStatus, issuerHashes, ocspErrorResponse, parseOcspRequest, publicKeyBits, caCertificateFacts, type CertIdHash } from "@pki/x509";
// Types only: the signer runs in another process (or in the all-in-one server), never loaded here.
import type { LiveItem, OcspSigner } from "@pki/revocation";
import { type Clock, derEtag } from "@pki/base";

const POLL_OVERLAP_MS = 10_000;
/** While notifications arrive, polling is only the safety net for one lost in a reconnect. */
const SAFETY_NET_POLL_MS = 5_000;
const ISSUER_REFRESH_MS = 30_000;
const UNKNOWN_ISSUER_RECHECK_MS = 1000;
/**
 * Repeated requests skip ASN.1 parsing: the DER of a plain request (one CertID, nothing
 * else) maps to what it asks. Keys are the decoded bytes, never the URL (one request has
 * endless URL spellings), only plain requests naming a certificate we hold a response for
 * are added, and the whole cache is bounded in bytes, oldest out first.
 */
export const REQUEST_CACHE_MAX_BYTES = 16 * 1024 * 1024;
/** A plain request is ~80 (SHA-1) to ~110 (SHA-256) bytes of DER; anything longer is never a key. */
export const MAX_CACHED_REQUEST_BYTES = 160;
/** What one cache slot costs besides its key: the Map entry and the resolved record. */
const REQUEST_CACHE_ENTRY_OVERHEAD_BYTES = 200;

export type OcspOutcome = "good" | "revoked" | "unknown" | "live_multi" | "malformed" | "unauthorized" | "try_later" | "internal_error" | "too_large";

export interface OcspAnswer {
  httpStatus: number;
  body: Buffer;
  /** response headers; content type and length are added unless `complete` */
  headers: Record<string, string | number>;
  outcome: OcspOutcome;
  /** the headers already carry content type and length (pre-rendered hot-path answers) */
  complete?: boolean;
}

interface Entry {
  issuerId: string;
  /** when the database row was written (0: signed in this process, not read back yet) */
  updatedAt: number;
  status: "good" | "revoked";
  sha1: Buffer;
  sha256: Buffer;
  etagSha1: string;
  etagSha256: string;
  thisUpdate: number;
  nextUpdate: number;
  lastModified: string;
  expires: string;
  /** headers rendered once and reused until `until` (ms): see fromEntry */
  rendered?: { until: number; sha1: Record<string, string | number>; sha256: Record<string, string | number> };
}

interface ResolvedRequest {
  serialHex: string;
  hash: CertIdHash;
  issuerId: string;
}

const ERRORS = {
  malformed: ocspErrorResponse(OCSPResponseStatus.malformedRequest),
  unauthorized: ocspErrorResponse(OCSPResponseStatus.unauthorized),
  tryLater: ocspErrorResponse(OCSPResponseStatus.tryLater),
  internal: ocspErrorResponse(OCSPResponseStatus.internalError),
};

// Errors are not cacheable for long: a tryLater must not stick in a CDN.
const NO_STORE = { "cache-control": "no-store" };

export interface OcspResponderDeps {
  inventory: OcspInventory;
  config: Config;
  clock: Clock;
  log?: Logger;
  /** present where this process also signs (the all-in-one server, or a responder given the token) */
  live?: OcspSigner;
  /** bytes the request cache may hold; REQUEST_CACHE_MAX_BYTES unless given */
  requestCacheMaxBytes?: number;
}

export class OcspResponder {
  private readonly entries = new Map<string, Entry>();
  /** `${hash}:${nameHash}:${keyHash}` → issuer id, for every root and intermediate we ever had */
  private issuerByHashes = new Map<string, string>();
  /** roots answer only from what they pre-signed in a ceremony: no key here to sign live */
  private rootIds = new Set<string>();
  private readonly requestCache = new Map<string, ResolvedRequest>();
  private requestCacheBytes = 0;
  private lastPoll: Date | undefined;
  private lastIssuerRefresh = 0;
  private lastUnknownIssuerRecheck = 0;
  private follower: ChangeFollower | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: OcspResponderDeps) {
    deps.live?.onSigned((records) => this.remember(records));
  }

  /** Token bucket for live signatures: refills at PKI_OCSP_LIVE_SIGN_PER_SECOND, holds one second's worth. */
  private liveTokens = -1;
  private liveRefilledAt = 0;
  private takeLiveSignature(): boolean {
    const rate = this.deps.config.revocation.ocspLiveSignPerSecond;
    const capacity = Math.max(1, rate);
    const now = Date.now();
    this.liveTokens = this.liveTokens < 0 ? capacity : Math.min(capacity, this.liveTokens + ((now - this.liveRefilledAt) / 1000) * rate);
    this.liveRefilledAt = now;
    if (this.liveTokens < 1) return false;
    this.liveTokens -= 1;
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  /** How much the request cache holds: entries, and the bytes they are accounted at. */
  get requestCacheUsage(): { entries: number; bytes: number } {
    return { entries: this.requestCache.size, bytes: this.requestCacheBytes };
  }

  private cacheRequest(key: string, resolved: ResolvedRequest): void {
    if (this.requestCache.has(key)) return;
    const cost = key.length + REQUEST_CACHE_ENTRY_OVERHEAD_BYTES;
    // Map iteration is insertion order: the first keys are the oldest.
    for (const oldest of this.requestCache.keys()) {
      if (this.requestCacheBytes + cost <= (this.deps.requestCacheMaxBytes ?? REQUEST_CACHE_MAX_BYTES)) break;
      this.requestCache.delete(oldest);
      this.requestCacheBytes -= oldest.length + REQUEST_CACHE_ENTRY_OVERHEAD_BYTES;
    }
    this.requestCache.set(key, resolved);
    this.requestCacheBytes += cost;
  }

  /**
   * Resolves when every unexpired pre-signed response is in memory (after `start` with
   * `preload: "background"`). Until then answers are just as right: a response not yet in
   * memory is read from the database (`lookup`), as one whose memory copy went stale is.
   */
  preloaded: Promise<void> = Promise.resolve();

  /**
   * Loads the issuers, then every unexpired pre-signed response, and polls for changes.
   * With `preload: "background"` it resolves once the issuers are known and loads the
   * responses behind it (a million take seconds), so a process can serve meanwhile.
   */
  async start(pollMs = this.deps.config.revocation.pollMs, options: { preload?: "await" | "background" } = {}): Promise<void> {
    await this.refreshIssuers();
    const started = this.deps.clock.now();
    // Polls cover what changes from here on (with their overlap); remember() keeps the
    // newest response per certificate whichever of preload, poll and lookup brings it first.
    this.lastPoll = started;
    this.follower = new ChangeFollower(this.deps.inventory, "ocspResponses", () => this.poll(), {
      pollMs,
      safetyNetMs: Math.max(pollMs, SAFETY_NET_POLL_MS),
      onListenError: (error) => this.deps.log?.warn({ err: error }, "OCSP responder cannot listen for new responses; polling for them"),
    });
    await this.follower.start();
    this.preloaded = (async () => {
      for await (const page of this.deps.inventory.ocspResponses.unexpired(started)) {
        if (this.stopped) return;
        this.remember(page);
      }
    })();
    if (options.preload === "background") {
      this.preloaded = this.preloaded.catch((error: Error) => this.deps.log?.warn({ err: error }, "OCSP responder could not preload pre-signed responses; answering from the database"));
      return;
    }
    await this.preloaded.catch((error: unknown) => {
      this.stop();
      throw error;
    });
  }

  stop(): void {
    this.stopped = true;
    this.follower?.stop();
  }

  /** Catches up with responses other processes wrote. Exposed so tests need not wait for the timer. */
  async poll(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      try {
        if (Date.now() - this.lastIssuerRefresh > ISSUER_REFRESH_MS) await this.refreshIssuers();
        const started = this.deps.clock.now();
        let since = new Date((this.lastPoll ?? started).getTime() - POLL_OVERLAP_MS);
        for (;;) {
          // The overlap re-reads the last seconds' keys; only responses not held yet are
          // fetched (parsing every overlapping response again stalled answers under issuance load).
          const changed = await this.deps.inventory.ocspResponses.changedSince(since);
          const unseen = changed.filter((c) => (this.entries.get(c.serial)?.updatedAt ?? -1) < c.updatedAt.getTime()).map((c) => c.serial);
          this.remember(await this.deps.inventory.ocspResponses.many(unseen));
          if (changed.length < 10_000) break;
          since = changed[changed.length - 1]!.updatedAt;
        }
        this.lastPoll = started;
      } catch (error) {
        this.deps.log?.warn({ err: error }, "OCSP responder could not poll the database; serving what it has");
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  async refreshIssuers(): Promise<void> {
    const map = new Map<string, string>();
    const roots = new Set<string>();
    for (const issuer of await this.deps.inventory.issuers.list()) {
      if (issuer.role === "root") roots.add(issuer.id);
      const facts = caCertificateFacts(issuer.certificateDer);
      const bits = publicKeyBits(facts.spki);
      for (const hash of ["sha1", "sha256"] as const) {
        const { nameHash, keyHash } = issuerHashes(facts.subjectDer, bits, hash);
        map.set(`${hash}:${nameHash.toString("hex")}:${keyHash.toString("hex")}`, issuer.id);
      }
    }
    this.issuerByHashes = map;
    this.rootIds = roots;
    this.lastIssuerRefresh = Date.now();
  }

  /** Keeps the newest response per certificate. */
  remember(records: OcspResponseRecord[]): void {
    for (const r of records) {
      const current = this.entries.get(r.serial);
      const thisUpdate = r.thisUpdate.getTime();
      // A re-signed "good" never replaces a "revoked": revocation is final.
      if (current && (current.thisUpdate > thisUpdate || (current.status === "revoked" && r.certStatus === "good"))) continue;
      this.entries.set(r.serial, {
        issuerId: r.issuerId,
        updatedAt: r.updatedAt?.getTime() ?? 0,
        status: r.certStatus,
        sha1: r.derSha1,
        sha256: r.derSha256,
        etagSha1: derEtag(r.derSha1),
        etagSha256: derEtag(r.derSha256),
        thisUpdate,
        nextUpdate: r.nextUpdate.getTime(),
        lastModified: r.thisUpdate.toUTCString(),
        expires: r.nextUpdate.toUTCString(),
      });
    }
  }

  private cacheHeaders(entry: Entry, hash: CertIdHash, now: number): Record<string, string> {
    // RFC 5019 §6.2: never cacheable past nextUpdate; capped so caches re-ask reasonably often.
    const maxAge = Math.max(0, Math.min(this.deps.config.revocation.ocspMaxAgeSeconds, Math.floor((entry.nextUpdate - now) / 1000)));
    return {
      "cache-control": `public, max-age=${maxAge}, no-transform, must-revalidate`,
      "last-modified": entry.lastModified,
      expires: entry.expires,
      etag: hash === "sha1" ? entry.etagSha1 : entry.etagSha256,
    };
  }

  private fromEntry(entry: Entry, hash: CertIdHash, now: number): OcspAnswer {
    if (!entry.rendered || now >= entry.rendered.until) {
      const render = (h: CertIdHash) => ({ "content-type": "application/ocsp-response", "content-length": (h === "sha1" ? entry.sha1 : entry.sha256).length, ...this.cacheHeaders(entry, h, now) });
      // max-age is the configured one until nextUpdate comes nearer than that, and then
      // counts down by the second: the headers hold until then, and then for a second at a time.
      const countdownFrom = entry.nextUpdate - this.deps.config.revocation.ocspMaxAgeSeconds * 1000;
      const until = now < countdownFrom ? countdownFrom : (Math.floor(now / 1000) + 1) * 1000;
      entry.rendered = { until, sha1: render("sha1"), sha256: render("sha256") };
    }
    return { httpStatus: 200, body: hash === "sha1" ? entry.sha1 : entry.sha256, headers: entry.rendered[hash], outcome: entry.status, complete: true };
  }

  /** The in-memory entry, or the database's, if it is still valid. */
  private async lookup(serialHex: string, now: number): Promise<Entry | undefined> {
    let entry = this.entries.get(serialHex);
    if (entry && entry.nextUpdate > now) return entry;
    const stored = await this.deps.inventory.ocspResponses.get(serialHex);
    if (stored) this.remember([stored]);
    entry = this.entries.get(serialHex);
    return entry && entry.nextUpdate > now ? entry : undefined;
  }

  /**
   * The hot path, synchronous: a plain request seen before (same DER) whose pre-signed
   * response is in memory and current. No parsing, no promise.
   */
  answerFromCache(der: Buffer): OcspAnswer | undefined {
    if (der.length > MAX_CACHED_REQUEST_BYTES) return undefined;
    const known = this.requestCache.get(der.toString("latin1"));
    if (!known) return undefined;
    const now = this.deps.clock.now().getTime();
    const entry = this.entries.get(known.serialHex);
    if (entry && entry.nextUpdate > now && entry.issuerId === known.issuerId) return this.fromEntry(entry, known.hash, now);
    return undefined;
  }

  /** Answers one DER request (the GET path's decoded bytes or the POST body). */
  async answer(der: Buffer): Promise<OcspAnswer> {
    const now = this.deps.clock.now().getTime();
    const cached = this.answerFromCache(der);
    if (cached) return cached;
    let parsed;
    try {
      parsed = parseOcspRequest(der);
    } catch (error) {
      if (error instanceof MalformedOcspRequest) return { httpStatus: 400, body: ERRORS.malformed, headers: NO_STORE, outcome: "malformed" };
      throw error;
    }
    const resolve = () =>
      parsed.requests.map((request) => ({
        request,
        issuerId: request.hash ? this.issuerByHashes.get(`${request.hash}:${request.issuerNameHash.toString("hex")}:${request.issuerKeyHash.toString("hex")}`) : undefined,
      }));
    let resolved = resolve();
    // An issuer we do not know may be one rotated in a moment ago: look again, at most once a second.
    // Rate-limited on its own clock (not the periodic refresh's), so a flood of foreign
    // issuers costs at most one issuer query a second.
    if (resolved.some((r) => !r.issuerId) && Date.now() - this.lastUnknownIssuerRecheck > UNKNOWN_ISSUER_RECHECK_MS) {
      this.lastUnknownIssuerRecheck = Date.now();
      await this.refreshIssuers();
      resolved = resolve();
    }
    // RFC 5019 §2.2.3: a CertID naming an issuer we do not serve (or a hash we do not speak) is "unauthorized".
    if (resolved.some((r) => !r.issuerId)) return { httpStatus: 200, body: ERRORS.unauthorized, headers: NO_STORE, outcome: "unauthorized" };
    const echoNonce = parsed.nonce !== undefined && this.deps.config.revocation.ocspNonce === "echo";
    if (echoNonce && (parsed.nonce!.length === 0 || parsed.nonce!.length > MAX_NONCE_BYTES)) return { httpStatus: 400, body: ERRORS.malformed, headers: NO_STORE, outcome: "malformed" };

    if (resolved.length === 1 && !echoNonce) {
      const { request, issuerId } = resolved[0]!;
      const entry = await this.lookup(request.serialHex, now);
      if (entry && entry.issuerId === issuerId) {
        if (parsed.plain && der.length <= MAX_CACHED_REQUEST_BYTES) this.cacheRequest(der.toString("latin1"), { serialHex: request.serialHex, hash: request.hash!, issuerId: issuerId! });
        return this.fromEntry(entry, request.hash!, now);
      }
    }
    // About an intermediate, the root's pre-signed answer is all there is: the root key
    // signs only in ceremonies, so no nonce is echoed and nothing is signed live.
    if (resolved.some((r) => this.rootIds.has(r.issuerId!))) {
      if (resolved.length === 1) {
        const entry = await this.lookup(resolved[0]!.request.serialHex, now);
        if (entry && entry.issuerId === resolved[0]!.issuerId) return this.fromEntry(entry, resolved[0]!.request.hash!, now);
      }
      return { httpStatus: 200, body: ERRORS.unauthorized, headers: NO_STORE, outcome: "unauthorized" };
    }
    // Nothing pre-signed fits: several certificates, a nonce to echo, a certificate issued a
    // moment ago, or a serial this issuer never issued.
    const live = this.deps.live;
    if (!live) {
      if (resolved.length > 1) return { httpStatus: 400, body: ERRORS.malformed, headers: NO_STORE, outcome: "malformed" };
      const status = await this.deps.inventory.ocspResponses.certificateStatus(resolved[0]!.request.serialHex);
      // Ours but not signed yet: ask again shortly. Never ours: we cannot sign "unknown" here.
      if (status && status.issuerId === resolved[0]!.issuerId && (status.status === "valid" || status.status === "revoked" || status.status === "pending")) {
        return { httpStatus: 503, body: ERRORS.tryLater, headers: { ...NO_STORE, "retry-after": "1" }, outcome: "try_later" };
      }
      return { httpStatus: 200, body: ERRORS.unauthorized, headers: NO_STORE, outcome: "unauthorized" };
    }
    // Live signing costs a token signature: a flood of made-up serials must not starve issuance.
    if (!this.takeLiveSignature()) return { httpStatus: 503, body: ERRORS.tryLater, headers: { ...NO_STORE, "retry-after": "1" }, outcome: "try_later" };
    const byIssuer = new Set(resolved.map((r) => r.issuerId));
    if (byIssuer.size > 1) return { httpStatus: 400, body: ERRORS.malformed, headers: NO_STORE, outcome: "malformed" }; // one response has one signer
    const items: LiveItem[] = resolved.map((r) => ({ certIdDer: r.request.certIdDer, serialHex: r.request.serialHex, issuerId: r.issuerId! }));
    const body = await live.signLive(items[0]!.issuerId, items, echoNonce ? parsed.nonceExtensionDer : undefined);
    if (resolved.length === 1) {
      const status = await this.deps.inventory.ocspResponses.certificateStatus(items[0]!.serialHex);
      if (status && (status.status === "valid" || status.status === "revoked")) live.enqueue(items[0]!.serialHex);
      const outcome: OcspOutcome =
        !status || status.issuerId !== items[0]!.issuerId || status.status === "failed" || status.status === "pending" ? "unknown" : status.status === "valid" ? "good" : "revoked";
      return { httpStatus: 200, body, headers: NO_STORE, outcome };
    }
    return { httpStatus: 200, body, headers: NO_STORE, outcome: "live_multi" };
  }
}
