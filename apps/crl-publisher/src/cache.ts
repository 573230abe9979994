// Serves published CRLs from memory, backed by crl_state. Every serving process (and any
// number of them) re-reads the small metadata columns when a publication commits
// (PostgreSQL LISTEN/NOTIFY; polling as a safety net, or alone on the embedded database)
// and reloads a CRL's DER only when its ETag changed, so a 50 MB CRL is read once per
// publication, not once per request.
import { Gauge } from "prom-client";
import { ChangeFollower, type CrlKind, type CrlMeta, type CrlServingInventory } from "@pki/db";
import { registry } from "@pki/http-kit";
import type { Logger } from "@pki/logger";
import type { Clock } from "@pki/authority";

/** While notifications arrive, polling is only the safety net for one lost in a reconnect. */
const SAFETY_NET_POLL_MS = 5_000;

export interface CachedCrl {
  der: Buffer;
  meta: CrlMeta;
}

const crlBytes = new Gauge({ name: "pki_crl_bytes", help: "size of the published CRL, DER", labelNames: ["issuer", "kind"] as const, registers: [registry] });
const crlEntries = new Gauge({ name: "pki_crl_entries", help: "revoked certificates listed on the published CRL", labelNames: ["issuer", "kind"] as const, registers: [registry] });
const crlNumber = new Gauge({ name: "pki_crl_number", help: "CRL number of the published CRL", labelNames: ["issuer", "kind"] as const, registers: [registry] });
// Ages are computed when Prometheus scrapes, from every cache in this process.
const caches = new Set<CrlCache>();
const crlAge = new Gauge({
  name: "pki_crl_age_seconds",
  help: "seconds since the published CRL's thisUpdate",
  labelNames: ["issuer", "kind"] as const,
  registers: [registry],
  collect() {
    for (const cache of caches) cache.updateTimeGauges();
  },
});
const crlRemaining = new Gauge({
  name: "pki_crl_seconds_until_next_update",
  help: "seconds until the published CRL's nextUpdate (alert well before 0)",
  labelNames: ["issuer", "kind"] as const,
  registers: [registry],
});

export class CrlCache {
  private readonly crls = new Map<string, CachedCrl>();
  private follower: ChangeFollower | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly deps: { inventory: CrlServingInventory; clock: Clock; log?: Logger }) {
    caches.add(this);
  }

  updateTimeGauges(): void {
    const now = this.deps.clock.now().getTime();
    for (const [key, crl] of this.crls) {
      const [issuer, kind] = key.split("|") as [string, string];
      crlAge.set({ issuer, kind }, (now - crl.meta.thisUpdate.getTime()) / 1000);
      crlRemaining.set({ issuer, kind }, (crl.meta.nextUpdate.getTime() - now) / 1000);
    }
  }

  get(issuerId: string, kind: CrlKind): CachedCrl | undefined {
    return this.crls.get(`${issuerId}|${kind}`);
  }

  /** Reloads every CRL whose ETag changed. Exposed so tests and the publisher need not wait. */
  async refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        for (const state of await this.deps.inventory.crls.states()) {
          for (const kind of ["full", "delta"] as const) {
            const meta = state[kind];
            if (!meta) continue;
            const key = `${state.issuerId}|${kind}`;
            if (this.crls.get(key)?.meta.etag === meta.etag) continue;
            const loaded = await this.deps.inventory.crls.read(state.issuerId, kind);
            if (!loaded) continue;
            this.crls.set(key, loaded);
            const labels = { issuer: state.issuerId, kind };
            crlBytes.set(labels, loaded.der.length);
            crlEntries.set(labels, loaded.meta.entries);
            crlNumber.set(labels, Number(loaded.meta.number));
          }
        }
      } catch (error) {
        this.deps.log?.warn({ err: error }, "CRL cache could not read the database; serving what it has");
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async start(pollMs: number): Promise<void> {
    await this.refresh();
    this.follower = new ChangeFollower(this.deps.inventory, "crls", () => this.refresh(), {
      pollMs,
      safetyNetMs: Math.max(pollMs, SAFETY_NET_POLL_MS),
      onListenError: (error) => this.deps.log?.warn({ err: error }, "CRL cache cannot listen for publications; polling for them"),
    });
    await this.follower.start();
  }

  stop(): void {
    caches.delete(this);
    this.follower?.stop();
  }
}
