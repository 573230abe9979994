// Signs OCSP responses ahead of time, in the process that holds the issuing token.
// Every unexpired certificate gets a response the moment it is issued (the `issued`
// event), a revocation re-signs it at once (`revoked`), a fast poll catches what other
// processes issued or revoked, and a sweep catches anything missing or due for refresh.
// Responses are signed by a delegated responder certificate per issuer (EKU OCSPSigning,
// id-pkix-ocsp-nocheck, short-lived, key on the token) that is renewed automatically.
import { randomBytes } from "node:crypto";
import type { Config } from "@pki/config";
import type { CertificateStatusRow, Inventory, OcspResponderRecord, OcspResponseRecord } from "@pki/db";
import type { Authority, CaEvents, Clock, Keyring, ServingIssuer } from "@pki/authority";
import type { Logger } from "@pki/logger";
import { type ResponderIdentity, type Signer, type SingleStatus, OCSP_PATH, OCSP_RESPONDER_PROFILE, PresignedResponseEncoder, signOcspResponse } from "@pki/x509";

/** Certificates per page of a sweep: one read and one multi-row upsert each. */
const PRESIGN_BATCH = 2000;
/**
 * Certificates signed at once (two signatures each). The token's sessions carry them to the
 * signing threads in chains; enough must wait in line that a session never idles while this
 * process encodes the next response (twice as many was no faster).
 */
const SIGN_CONCURRENCY = 32;
const POLL_OVERLAP_MS = 10_000;
const FULL_SWEEP_MS = 60_000;

export interface OcspSignerDeps {
  inventory: Inventory;
  keyring: Keyring;
  /** issues the delegated responder certificates */
  authority: Authority;
  config: Config;
  clock: Clock;
  events?: CaEvents;
  log?: Logger;
}

interface ActiveResponder {
  record: OcspResponderRecord;
  identity: ResponderIdentity;
  /** pre-signing encoders by issuer id, made once per responder */
  encoders: Map<string, PresignedResponseEncoder>;
}

/** A request item a responder could not answer from pre-signed responses. */
export interface LiveItem {
  certIdDer: Buffer;
  serialHex: string;
  /** the issuer the CertID names, already resolved by the responder */
  issuerId: string;
}

export class OcspSigner {
  private readonly responders = new Map<string, ActiveResponder>();
  private readonly renewing = new Map<string, Promise<ActiveResponder>>();
  /** last leaf expiry of retired issuers, which cannot change */
  private readonly lastExpiry = new Map<string, Date | null>();
  private readonly queued = new Set<string>();
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastPoll: Date | undefined;
  private lastFullSweep = 0;
  private stopping = false;
  private readonly listeners: Array<(records: OcspResponseRecord[]) => void> = [];
  private readonly onIssued = (e: { serial: string }) => this.enqueue(e.serial);
  private stopSigningRevocations: (() => void) | undefined;
  /** how many responses this process signed, for metrics and tests */
  signedCount = 0;

  constructor(private readonly deps: OcspSignerDeps) {
    // From construction, not start(): a process serves revocations (the API) before its
    // background work starts, and each must wait for its response to be re-signed.
    this.signRevocations();
  }

  private signRevocations(): void {
    this.stopSigningRevocations ??= this.deps.events?.beforeRevocationReported((e) => this.signRevoked(e.serial));
  }

  /** In-process responders subscribe here to learn new responses without waiting for their poll. */
  onSigned(listener: (records: OcspResponseRecord[]) => void): void {
    this.listeners.push(listener);
  }

  private get validityMs(): number {
    return this.deps.config.revocation.ocspValiditySeconds * 1000;
  }

  /** The issuer's current responder, renewed when less than half its lifetime is left. */
  async responderFor(issuerId: string): Promise<ActiveResponder> {
    const now = this.deps.clock.now().getTime();
    const ttl = this.deps.config.revocation.ocspResponderTtlSeconds * 1000;
    // Fresh enough: more than half its lifetime left, or already lasting as long as its
    // issuer (near the issuer's end a new one could not live longer, so none is made).
    const issuerEnd = this.deps.keyring.get(issuerId)?.facts.notAfter.getTime() ?? Infinity;
    const fresh = (record: OcspResponderRecord) => record.notAfter.getTime() - now > ttl / 2 || record.notAfter.getTime() >= issuerEnd;
    const cached = this.responders.get(issuerId);
    if (cached && fresh(cached.record)) return cached;
    const inFlight = this.renewing.get(issuerId);
    if (inFlight) return inFlight;
    const work = (async () => {
      const stored = await this.deps.inventory.ocspResponders.current(issuerId, new Date(now));
      const record = stored && fresh(stored) ? stored : await this.issueResponder(issuerId);
      const signer: Signer = await this.deps.keyring.delegatedSigner(record.keyUri);
      const active = { record, identity: { certificateDer: record.certificateDer, signer }, encoders: new Map() };
      this.responders.set(issuerId, active);
      return active;
    })().finally(() => this.renewing.delete(issuerId));
    this.renewing.set(issuerId, work);
    return work;
  }

  /**
   * A new delegated responder certificate: key generated on the issuing token, certificate
   * through the authority's pipeline (built from the ocsp-responder profile, linted and
   * recorded before the issuer's key signs it), like any other certificate this CA issues.
   */
  private async issueResponder(issuerId: string): Promise<OcspResponderRecord> {
    const issuer = this.serving(issuerId);
    const stamp = this.deps.clock.now().toISOString().replace(/[-:]/g, "").slice(0, 15);
    const label = `ocsp-${issuerId}-${stamp}-${randomBytes(2).toString("hex")}`;
    const key = await this.deps.keyring.generateDelegatedKey(label, issuer.facts.keyAlgorithm);
    const issued = await this.deps.authority.issueOwn({
      profile: OCSP_RESPONDER_PROFILE,
      issuer,
      publicKeySpki: key.publicKeySpki,
      keyAlgorithm: key.algorithm,
      commonName: `OCSP Responder ${issuerId}`.slice(0, 64),
      // Lint wants every leaf named in its SAN; the responder's name is its URL.
      sans: [{ type: "URI", value: this.deps.config.publicUrl + OCSP_PATH }],
      ttlSeconds: this.deps.config.revocation.ocspResponderTtlSeconds,
      actor: "ocsp-signer",
      audit: { action: "ocsp-responder.issue", details: { issuerId, keyUri: key.uri } },
    });
    const record: OcspResponderRecord = { id: issued.serial, issuerId, keyUri: key.uri, certificateDer: issued.der, notBefore: issued.notBefore, notAfter: issued.notAfter };
    await this.deps.inventory.ocspResponders.create(record);
    this.deps.log?.info({ issuerId, responder: issued.serial, notAfter: issued.notAfter.toISOString() }, "OCSP responder certificate issued");
    return record;
  }

  private serving(issuerId: string): ServingIssuer {
    const issuer = this.deps.keyring.get(issuerId);
    if (!issuer) throw new Error(`issuer ${issuerId} is not in this process's keyring`);
    return issuer;
  }

  /** Signs and stores the SHA-1 and SHA-256 CertID responses for each certificate. */
  async presign(rows: CertificateStatusRow[]): Promise<OcspResponseRecord[]> {
    const records = await this.sign(rows);
    await this.store(records);
    return records;
  }

  /** Signs the SHA-1 and SHA-256 CertID responses for each certificate, SIGN_CONCURRENCY at a time. */
  private async sign(rows: CertificateStatusRow[]): Promise<OcspResponseRecord[]> {
    const records: OcspResponseRecord[] = [];
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        const issuer = this.deps.keyring.get(row.issuerId);
        if (!issuer) continue; // an issuer this process cannot sign for: another process will
        const responder = await this.responderFor(row.issuerId);
        const thisUpdate = this.deps.clock.now();
        const nextUpdate = new Date(Math.min(thisUpdate.getTime() + this.validityMs, responder.record.notAfter.getTime()));
        let encoder = responder.encoders.get(row.issuerId);
        if (!encoder) responder.encoders.set(row.issuerId, (encoder = new PresignedResponseEncoder(responder.identity, issuer.facts)));
        const status = {
          serialHex: row.serial,
          status: row.status === "valid" ? ("good" as const) : ("revoked" as const),
          revokedAt: row.revokedAt ?? undefined,
          reason: row.reason ?? undefined,
          thisUpdate,
          nextUpdate,
        };
        const sign = (hash: "sha1" | "sha256") => encoder.sign(hash, status, thisUpdate);
        const [derSha1, derSha256] = await Promise.all([sign("sha1"), sign("sha256")]);
        records.push({
          serial: row.serial,
          issuerId: row.issuerId,
          certStatus: row.status === "valid" ? "good" : "revoked",
          derSha1,
          derSha256,
          thisUpdate: new Date(Math.floor(thisUpdate.getTime() / 1000) * 1000),
          nextUpdate: new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000),
          responderId: responder.record.id,
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(SIGN_CONCURRENCY, rows.length) }, worker));
    return records;
  }

  /**
   * Stores signed responses (one statement) and tells in-process responders about the ones
   * stored: a response the store refused (a "good" for a certificate revoked meanwhile) must
   * not replace the revoked answer in their memory either.
   */
  private async store(records: OcspResponseRecord[]): Promise<void> {
    const written = await this.deps.inventory.ocspResponses.upsert(records);
    this.signedCount += records.length * 2;
    const stored = written.size === records.length ? records : records.filter((r) => written.has(r.serial));
    if (stored.length > 0) for (const listener of this.listeners) listener(stored);
  }

  /**
   * Re-signs a just-revoked certificate's response and stores it before the revocation is
   * reported done; in-process responders have it when this resolves. On failure it is
   * queued again (and the poll and sweep find it too): the revocation itself stands.
   */
  async signRevoked(serial: string): Promise<void> {
    try {
      await this.presign(await this.deps.inventory.ocspResponses.statusRows([serial]));
    } catch (error) {
      this.deps.log?.error({ err: error, serial }, "re-signing a revoked certificate's OCSP response failed; retrying");
      this.enqueue(serial);
    }
  }

  /** Queues a certificate whose status just changed; queued serials are signed together. */
  enqueue(serial: string): void {
    this.queued.add(serial);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** Signs everything queued so far; resolves when it is stored. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.queued.size === 0) return;
    const serials = [...this.queued];
    this.queued.clear();
    this.flushing = (async () => {
      try {
        await this.presign(await this.deps.inventory.ocspResponses.statusRows(serials));
      } catch (error) {
        // The poll and the sweep will find these certificates again.
        this.deps.log?.error({ err: error, count: serials.length }, "pre-signing OCSP responses failed");
      }
    })();
    await this.flushing;
    this.flushing = undefined;
  }

  /**
   * Issuers to keep responses for: active ones, and retired ones until their last
   * certificate expires. Without that limit a retired issuer would get a fresh responder
   * certificate every few days for ever, and never look finished.
   */
  private async signingIssuers(now: Date): Promise<string[]> {
    const ids: string[] = [];
    for (const issuer of this.deps.keyring.all()) {
      if (issuer.record.status === "retired") {
        let last = this.lastExpiry.get(issuer.record.id);
        if (last === undefined) this.lastExpiry.set(issuer.record.id, (last = (await this.deps.inventory.crls.lastExpiry(issuer.record.id)) ?? null));
        if (!last || last <= now) continue;
      }
      ids.push(issuer.record.id);
    }
    return ids;
  }

  /** Current responder ids of every issuer this process signs for (renewing them if due). */
  private async currentResponders(issuerIds: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const id of issuerIds) ids.push((await this.responderFor(id)).record.id);
    return ids;
  }

  /**
   * One pass: certificates issued or revoked since the previous pass (by any process),
   * and every minute all unexpired certificates whose response is missing, stale, or
   * signed by a responder that is no longer current.
   */
  async sweep(full = false): Promise<number> {
    const now = this.deps.clock.now();
    const issuerIds = await this.signingIssuers(now);
    const currentResponders = await this.currentResponders(issuerIds);
    const refreshBefore = new Date(now.getTime() + this.validityMs / 2);
    const changedSince = !full && this.lastPoll ? new Date(this.lastPoll.getTime() - POLL_OVERLAP_MS) : undefined;
    this.lastPoll = now;
    const query = { now, refreshBefore, currentResponders, issuerIds, limit: PRESIGN_BATCH };
    let total = 0;
    if (changedSince) {
      // A poll: few rows, each page read after the previous one is stored.
      while (!this.stopping) {
        const rows = await this.deps.inventory.ocspResponses.needingResponses({ ...query, changedSince });
        if (rows.length === 0) break;
        const signed = await this.presign(rows);
        total += signed.length;
        if (signed.length === 0) break;
      }
      return total;
    }
    // Everything, page by page in serial order, as a pipeline: the next page is read and
    // the previous one stored while this one is signed, so the token never waits for the
    // database. A full sweep of a large inventory takes minutes: stop() ends it between pages.
    let page = this.deps.inventory.ocspResponses.needingResponses({ ...query, after: "" });
    let storing: Promise<void> = Promise.resolve();
    try {
      while (!this.stopping) {
        const rows = await page;
        if (rows.length === 0) break;
        page = rows.length < PRESIGN_BATCH ? Promise.resolve([]) : this.deps.inventory.ocspResponses.needingResponses({ ...query, after: rows[rows.length - 1]!.serial });
        const records = await this.sign(rows);
        await storing;
        storing = this.store(records);
        total += records.length;
      }
    } finally {
      // a page read ahead and not used must not reject unobserved
      page.catch(() => undefined);
      await storing;
    }
    return total;
  }

  /** Signs one response live: several certificates and/or a nonce, which pre-signed answers cannot carry. */
  async signLive(issuerId: string, items: LiveItem[], nonceExtensionDer: Buffer | undefined): Promise<Buffer> {
    const responder = await this.responderFor(issuerId);
    const now = this.deps.clock.now();
    const nextUpdate = new Date(Math.min(now.getTime() + this.validityMs, responder.record.notAfter.getTime()));
    const singles: SingleStatus[] = [];
    for (const item of items) {
      const row = await this.deps.inventory.ocspResponses.certificateStatus(item.serialHex);
      const ours = row && row.issuerId === item.issuerId;
      // Serials this issuer never issued (or whose signing failed) are "unknown" (RFC 6960 §2.2).
      const status: SingleStatus["status"] = !ours || row.status === "failed" || row.status === "pending" ? "unknown" : row.status === "valid" ? "good" : "revoked";
      singles.push({ certIdDer: item.certIdDer, status, revokedAt: row?.revokedAt ?? undefined, reason: row?.reason ?? undefined, thisUpdate: now, nextUpdate });
    }
    return signOcspResponse(responder.identity, singles, { producedAt: now, nonceExtensionDer });
  }

  /**
   * Signs what is issued or revoked from now on at once, and sweeps every `intervalMs`.
   * `firstSweepAfterMs` holds the first sweep back (a process that has just started serves
   * its first requests before catching up on a backlog; answers meanwhile are signed live).
   */
  start(intervalMs = this.deps.config.revocation.pollMs, options: { firstSweepAfterMs?: number } = {}): void {
    this.stopping = false;
    this.deps.events?.on("issued", this.onIssued);
    this.signRevocations();
    const run = () => {
      if (this.running || this.stopping) return;
      const full = Date.now() - this.lastFullSweep >= FULL_SWEEP_MS;
      if (full) this.lastFullSweep = Date.now();
      this.running = this.sweep(full)
        .then(() => undefined)
        .catch((error: Error) => this.deps.log?.error({ err: error }, "OCSP pre-signing sweep failed; retrying next pass"))
        .finally(() => (this.running = undefined));
    };
    const schedule = () => {
      run();
      this.timer = setInterval(run, intervalMs);
      this.timer.unref();
    };
    if (!options.firstSweepAfterMs) {
      schedule();
      return;
    }
    this.timer = setTimeout(schedule, options.firstSweepAfterMs);
    this.timer.unref();
  }

  /** Resolves when nothing is queued or being signed. */
  async settled(): Promise<void> {
    for (;;) {
      if (this.running) await this.running;
      await this.flush();
      if (!this.running && this.queued.size === 0 && !this.flushing) return;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.deps.events?.off("issued", this.onIssued);
    this.stopSigningRevocations?.();
    this.stopSigningRevocations = undefined;
    if (this.timer) clearInterval(this.timer);
    await this.settled();
  }
}

/**
 * How long past its certificate's notAfter a responder key stays on the token: processes
 * whose clocks lag ours (the scheduler's clock-check warns beyond 5 s) and signatures
 * already in flight at notAfter are long done an hour later.
 */
export const RESPONDER_KEY_GRACE_MS = 3_600_000;
const RESPONDER_KEYS_PER_BATCH = 100;
const RESPONDER_KEY_BATCHES_PER_RUN = 10;

export interface DestroyedResponderKey {
  responderId: string;
  issuerId: string;
  keyUri: string;
  notAfter: Date;
  /** token objects destroyed: 2 (private and public), 0 if an earlier run already had */
  objects: number;
}

/**
 * Destroys the token keys of delegated responders whose certificate ended more than
 * RESPONDER_KEY_GRACE_MS ago, and records each (ocsp_responders.key_destroyed_at and an
 * `ocsp-responder.key-destroy` audit event). Every renewal makes a new key, so without
 * this the issuing token collects about a hundred keys per issuer per year.
 *
 * Why an expired responder's key is never needed again:
 * - The key only signs. Pre-signed responses are stored bytes that carry the responder
 *   certificate; storing, serving and verifying them never touches the key.
 * - Every response a responder signs has nextUpdate at or before the responder's notAfter
 *   (presign and signLive cap it), and relying parties reject a response whose responder
 *   certificate has expired: once notAfter has passed, nothing it signed is still in use
 *   and nothing it could sign would be accepted.
 * - No process picks it again: `responderFor` takes a responder from the inventory only
 *   while notAfter is ahead (`current`), and keeps a cached one only while more than half
 *   its life is left, or while it lasts as long as its issuer, i.e. until the issuer itself
 *   has expired; a live signature for an expired issuer then fails instead of producing a
 *   response nobody accepts.
 * A superseded responder that has not expired yet keeps its key: another process may
 * still hold it cached. An expired one is either superseded or its issuer has stopped
 * signing (retired with nothing left to answer for, or expired): either way it is done.
 * A crash between destroying and recording is harmless: the next run finds the key gone
 * (0 objects) and records it then.
 */
export async function destroyExpiredResponderKeys(deps: Pick<OcspSignerDeps, "inventory" | "keyring" | "clock">, actor: string): Promise<DestroyedResponderKey[]> {
  const destroyed: DestroyedResponderKey[] = [];
  const endedBefore = new Date(deps.clock.now().getTime() - RESPONDER_KEY_GRACE_MS);
  for (let batch = 0; batch < RESPONDER_KEY_BATCHES_PER_RUN; batch++) {
    const expired = await deps.inventory.ocspResponders.withKeyEndedBefore(endedBefore, RESPONDER_KEYS_PER_BATCH);
    for (const responder of expired) {
      const objects = await deps.keyring.destroyDelegatedKey(responder.keyUri);
      const details = { issuerId: responder.issuerId, keyUri: responder.keyUri, notAfter: responder.notAfter.toISOString(), objectsDestroyed: objects };
      await deps.inventory.ocspResponders.markKeyDestroyed(responder.id, deps.clock.now(), { actor, action: "ocsp-responder.key-destroy", details });
      destroyed.push({ responderId: responder.id, issuerId: responder.issuerId, keyUri: responder.keyUri, notAfter: responder.notAfter, objects });
    }
    if (expired.length < RESPONDER_KEYS_PER_BATCH) break;
  }
  return destroyed;
}
