import type { CaRuntime } from "@pki/authority";
import { databasePool, issuerSecondsToExpiry, leafSecondsToExpiry, tokenSessions } from "@pki/metrics";

const SOONEST_LEAVES = 10;

/** Sets the gauges that describe state rather than events; run on each scrape. */
export async function refreshStateGauges(runtime: CaRuntime): Promise<void> {
  const now = runtime.clock.now().getTime();
  issuerSecondsToExpiry.reset();
  for (const issuer of await runtime.inventory.issuers.list()) {
    issuerSecondsToExpiry.set({ issuer: issuer.id, role: issuer.role, status: issuer.status }, (issuer.notAfter.getTime() - now) / 1000);
  }
  leafSecondsToExpiry.reset();
  const soonest = await runtime.inventory.certificates.list({ status: "valid", limit: SOONEST_LEAVES }, new Date(now));
  soonest.items.forEach((leaf, i) => leafSecondsToExpiry.set({ rank: String(i + 1) }, (leaf.notAfter.getTime() - now) / 1000));
  const pool = runtime.inventory.poolStats();
  databasePool.set({ state: "total" }, pool.total);
  databasePool.set({ state: "idle" }, pool.idle);
  databasePool.set({ state: "waiting" }, pool.waiting);
  const sessions = runtime.keyring.tokenStats();
  tokenSessions.set({ state: "open" }, sessions.sessions);
  tokenSessions.set({ state: "idle" }, sessions.idle);
  tokenSessions.set({ state: "waiting" }, sessions.waiting);
}
