// Publishes each serving issuer's full and delta CRLs: after revocations (debounced, so a
// burst of a thousand is a handful of CRLs), and on a schedule well before nextUpdate.
// Several publishers may run; the crl_state row lock in CrlStore.publish keeps CRL
// numbers strictly increasing between them.
import type { Config } from "@pki/config";
import { CrlSourceChangedError, type CrlMeta, type CrlStateRecord, type Inventory } from "@pki/db";
import type { Logger } from "@pki/logger";
import { CaError, crlUrls } from "@pki/x509";
import { type CaEvents, type Clock, type CrlScope, type Keyring, type ServingIssuer, buildAndSignCrl } from "@pki/authority";

/**
 * Revocations reach the database with the revoking process's clock and commit a moment
 * later, so a revocation stamped just before a full CRL's thisUpdate may still be missing
 * from it. Delta CRLs therefore reach back this far before their base's thisUpdate;
 * listing an entry the base already has is harmless.
 */
const DELTA_OVERLAP_MS = 5 * 60_000;
/** How far the cross-process revocation poll looks back past its previous run, for the same reason. */
const POLL_OVERLAP_MS = 10_000;

export interface CrlPublisherDeps {
  inventory: Inventory;
  keyring: Keyring;
  config: Config;
  clock: Clock;
  events?: CaEvents;
  log?: Logger;
}

interface Debounce {
  timer: NodeJS.Timeout;
  firstAt: number;
}

export class CrlPublisher {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly debounces = new Map<string, Debounce>();
  private readonly seenRevocation = new Map<string, number>();
  private readonly lastExpiry = new Map<string, Date | null>();
  private lastPoll: Date | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly onRevoked = (event: { issuerId: string }) => this.revocationSeen(event.issuerId);
  /** every CRL this process published, for metrics and tests */
  readonly published: Array<{ issuerId: string; kind: "full" | "delta"; meta: CrlMeta }> = [];
  onPublished?: (issuerId: string, kind: "full" | "delta", meta: CrlMeta) => void;

  constructor(private readonly deps: CrlPublisherDeps) {}

  /** Issuers that publish: active intermediates, and retired ones until their last certificate expires. */
  async publishingIssuers(): Promise<ServingIssuer[]> {
    const now = this.deps.clock.now();
    const result: ServingIssuer[] = [];
    for (const issuer of this.deps.keyring.all()) {
      if (issuer.record.status === "active") result.push(issuer);
      else if (issuer.record.status === "retired") {
        // A retired issuer signs nothing new, so its last expiry is fixed: look it up once,
        // not on every pass (it is an aggregate over all its certificates).
        let last = this.lastExpiry.get(issuer.record.id);
        if (last === undefined) this.lastExpiry.set(issuer.record.id, (last = (await this.deps.inventory.crls.lastExpiry(issuer.record.id)) ?? null));
        if (last && last > now) result.push(issuer);
      }
    }
    return result;
  }

  private scope(issuerId: string): CrlScope {
    const urls = crlUrls(this.deps.config.publicUrl, issuerId);
    return { url: urls.full, deltaUrl: urls.delta, covers: "user" };
  }

  /** Runs publications of one issuer one at a time in this process. */
  private serially<T>(issuerId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(issuerId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(work);
    this.queues.set(issuerId, next);
    return next;
  }

  async publishFull(issuerId: string): Promise<CrlMeta> {
    return this.serially(issuerId, () => retryWhileRevoking(() => this.buildFull(issuerId)));
  }

  async publishDelta(issuerId: string): Promise<CrlMeta> {
    return this.serially(issuerId, () => retryWhileRevoking(() => this.buildDelta(issuerId)));
  }

  /**
   * An operator's "publish now" (`pki crl publish`, the console): a new full CRL then a new
   * delta for one issuer or every publishing one, each audited under the operator's name.
   * An issuer this process cannot sign for is named in a 404 (a root's CRL is signed in
   * the root ceremony instead).
   */
  async publishNow(issuerId: string | undefined, audit: { actor: string; sourceIp?: string | undefined }): Promise<Array<{ issuerId: string; full: CrlMeta; delta: CrlMeta }>> {
    let ids: string[];
    if (issuerId === undefined) ids = (await this.publishingIssuers()).map((i) => i.record.id);
    else if (this.deps.keyring.get(issuerId)) ids = [issuerId];
    else {
      const record = await this.deps.inventory.issuers.get(issuerId);
      if (record?.role === "root") throw new CaError("bad_request", `${issuerId} is a root: its CRL is signed with the root key in the ceremony (pki crl sign-root)`);
      throw new CaError("not_found", record ? `issuer ${issuerId} is ${record.status}: it publishes no more CRLs` : `no issuer ${issuerId.slice(0, 80)}`);
    }
    const published = [];
    for (const id of ids) {
      const full = await this.publishFull(id);
      const delta = await this.publishDelta(id);
      await this.deps.inventory.audit.record({
        actor: audit.actor,
        action: "crl.publish",
        target: id,
        sourceIp: audit.sourceIp,
        details: { fullNumber: String(full.number), deltaNumber: String(delta.number), entries: full.entries },
      });
      published.push({ issuerId: id, full, delta });
    }
    return published;
  }

  private signerFor(issuerId: string): ServingIssuer {
    const issuer = this.deps.keyring.get(issuerId);
    if (!issuer) throw new Error(`issuer ${issuerId} has no key in this process's keyring; it cannot sign its CRL`);
    return issuer;
  }

  private async buildFull(issuerId: string): Promise<CrlMeta> {
    const issuer = this.signerFor(issuerId);
    const validity = this.deps.config.revocation.crlValiditySeconds * 1000;
    const meta = await this.deps.inventory.crls.publish(issuerId, "full", async ({ number, revoked, writePart }) => {
      const thisUpdate = this.deps.clock.now();
      const nextUpdate = new Date(thisUpdate.getTime() + validity);
      // RFC 5280 §3.3: an entry stays until one regularly scheduled CRL after the certificate expired.
      const notAfterFrom = new Date(thisUpdate.getTime() - validity);
      const signed = await buildAndSignCrl({ issuer: issuer.facts, number, thisUpdate, nextUpdate, scope: this.scope(issuerId) }, revoked({ notAfterFrom }), issuer.signer, "full", writePart);
      return { ...signed, thisUpdate: floorSeconds(thisUpdate), nextUpdate: floorSeconds(nextUpdate) };
    });
    this.record(issuerId, "full", meta);
    return meta;
  }

  private async buildDelta(issuerId: string): Promise<CrlMeta> {
    const state = await this.deps.inventory.crls.state(issuerId);
    if (!state?.full) return this.buildFull(issuerId);
    const issuer = this.signerFor(issuerId);
    const validity = this.deps.config.revocation.deltaCrlValiditySeconds * 1000;
    const meta = await this.deps.inventory.crls.publish(issuerId, "delta", async ({ number, previous, revoked, writePart }) => {
      // The base is the full CRL current under the lock, which another publisher may have replaced.
      const base = previous.full ?? state.full!;
      const thisUpdate = this.deps.clock.now();
      const nextUpdate = new Date(Math.min(thisUpdate.getTime() + validity, base.nextUpdate.getTime()));
      const signed = await buildAndSignCrl(
        { issuer: issuer.facts, number, thisUpdate, nextUpdate, scope: this.scope(issuerId), baseNumber: base.number },
        revoked({ notAfterFrom: new Date(thisUpdate.getTime() - this.deps.config.revocation.crlValiditySeconds * 1000), revokedFrom: new Date(base.thisUpdate.getTime() - DELTA_OVERLAP_MS) }),
        issuer.signer,
        "delta",
        writePart,
      );
      return { ...signed, thisUpdate: floorSeconds(thisUpdate), nextUpdate: floorSeconds(nextUpdate), baseNumber: base.number };
    });
    this.record(issuerId, "delta", meta);
    return meta;
  }

  private record(issuerId: string, kind: "full" | "delta", meta: CrlMeta): void {
    this.published.push({ issuerId, kind, meta });
    if (this.published.length > 1000) this.published.splice(0, this.published.length - 1000);
    this.deps.log?.info({ issuerId, kind, number: meta.number.toString(), entries: meta.entries }, "CRL published");
    this.onPublished?.(issuerId, kind, meta);
  }

  /**
   * A revocation of one of this issuer's certificates was seen: re-sign its CRLs once no
   * further revocation arrived for the debounce time, or once the first one has waited the
   * maximum, whichever is sooner.
   */
  revocationSeen(issuerId: string): void {
    const { crlDebounceMs, crlMaxWaitMs } = this.deps.config.revocation;
    const now = Date.now();
    const pending = this.debounces.get(issuerId);
    if (pending) clearTimeout(pending.timer);
    const firstAt = pending?.firstAt ?? now;
    const delay = Math.max(0, Math.min(crlDebounceMs, firstAt + crlMaxWaitMs - now));
    const timer = setTimeout(() => {
      this.debounces.delete(issuerId);
      // The delta first (small, so the revocation is out fast), then the full CRL.
      void this.serially(issuerId, async () => {
        await this.buildDelta(issuerId);
        await this.buildFull(issuerId);
      }).catch((error: Error) => this.deps.log?.error({ err: error, issuerId }, "CRL publication after revocation failed; the schedule retries"));
    }, delay);
    this.debounces.set(issuerId, { timer, firstAt });
  }

  /**
   * One scheduling pass: find revocations other processes made, publish what is missing,
   * re-sign full CRLs older than the refresh interval and deltas older than half their
   * validity or based on an older full CRL.
   */
  async tick(): Promise<void> {
    const now = this.deps.clock.now();
    const issuers = await this.publishingIssuers();
    const states = new Map((await this.deps.inventory.crls.states()).map((s) => [s.issuerId, s]));
    await this.pollRevocations(states);
    const { crlRefreshSeconds, deltaCrlValiditySeconds } = this.deps.config.revocation;
    for (const issuer of issuers) {
      const id = issuer.record.id;
      if (this.debounces.has(id)) continue; // a publication is already coming
      const state: CrlStateRecord | undefined = states.get(id);
      try {
        if (!state?.full || now.getTime() - state.full.thisUpdate.getTime() >= crlRefreshSeconds * 1000 || state.full.nextUpdate <= now) {
          await this.publishFull(id);
          await this.publishDelta(id);
        } else if (!state.delta || state.delta.baseNumber !== state.full.number || now.getTime() - state.delta.thisUpdate.getTime() >= (deltaCrlValiditySeconds * 1000) / 2) {
          await this.publishDelta(id);
        }
      } catch (error) {
        this.deps.log?.error({ err: error, issuerId: id }, "scheduled CRL publication failed; retrying next pass");
      }
    }
  }

  private async pollRevocations(states: Map<string, CrlStateRecord>): Promise<void> {
    const started = this.deps.clock.now();
    const since = this.lastPoll ? new Date(this.lastPoll.getTime() - POLL_OVERLAP_MS) : new Date(0);
    const latest = await this.deps.inventory.crls.revokedSince(since);
    for (const { issuerId, latest: at } of latest) {
      if (!this.deps.keyring.get(issuerId)) continue;
      const seen = this.seenRevocation.get(issuerId);
      if (seen === undefined) {
        // First look: anything revoked after the newest published CRL still has to go out.
        const state = states.get(issuerId);
        const published = state?.delta?.thisUpdate ?? state?.full?.thisUpdate;
        if (published && at >= published) this.revocationSeen(issuerId);
      } else if (at.getTime() > seen) this.revocationSeen(issuerId);
      this.seenRevocation.set(issuerId, Math.max(seen ?? 0, at.getTime()));
    }
    this.lastPoll = started;
  }

  /** Starts reacting to revocations and the schedule. `intervalMs` defaults to the poll interval. */
  start(intervalMs = this.deps.config.revocation.pollMs): void {
    this.deps.events?.on("revoked", this.onRevoked);
    const run = () => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((error: Error) => this.deps.log?.error({ err: error }, "CRL schedule pass failed"))
        .finally(() => (this.ticking = undefined));
    };
    run();
    this.ticker = setInterval(run, intervalMs);
    this.ticker.unref();
  }

  /** Resolves when no debounce is pending and nothing is being published. */
  async settled(): Promise<void> {
    for (;;) {
      if (this.ticking) await this.ticking;
      if (this.debounces.size > 0) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      await Promise.allSettled([...this.queues.values()]);
      if (this.debounces.size === 0 && !this.ticking) return;
    }
  }

  async stop(): Promise<void> {
    this.deps.events?.off("revoked", this.onRevoked);
    if (this.ticker) clearInterval(this.ticker);
    for (const d of this.debounces.values()) clearTimeout(d.timer);
    this.debounces.clear();
    await this.ticking;
    await Promise.allSettled([...this.queues.values()]);
  }
}

const floorSeconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

/**
 * A revocation committed between counting a CRL's entries and streaming them fails that
 * build before anything is published; the next attempt sees the revocation in both.
 */
async function retryWhileRevoking<T>(build: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await build();
    } catch (error) {
      if (!(error instanceof CrlSourceChangedError) || attempt >= attempts) throw error;
    }
  }
}
