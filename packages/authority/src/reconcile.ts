import type { Inventory } from "@pki/db";
import type { Clock } from "./clock.ts";

/**
 * An intent row still `pending` long after its request is what a crash (or a database
 * outage) between "record" and "store" leaves behind. The token may have signed it, but
 * the certificate was never stored, so it was never released to anyone: nothing can
 * present it. Such rows are closed as `failed`, with an audit event, so the inventory
 * has no open question. Signing takes milliseconds; a minute is far beyond any request.
 */
export async function reconcilePendingIntents(inventory: Inventory, clock: Clock, graceMs = 60_000): Promise<string[]> {
  const cutoff = new Date(clock.now().getTime() - graceMs);
  // A CA certificate's plan left pending the same way (a ceremony that crashed mid-way).
  for (const intent of await inventory.issuers.pendingIntentsBefore(cutoff)) {
    await inventory.issuers.markIntentFailed(intent.id, {
      actor: "system:reconcile",
      action: "issuer.reconcile",
      target: intent.id,
      details: { reason: "CA certificate planned but never stored (crash or outage during the ceremony)", createdAt: intent.createdAt.toISOString() },
    });
  }
  const stale = await inventory.certificates.pendingBefore(cutoff);
  for (const row of stale) {
    await inventory.certificates.markFailed(row.serial, {
      actor: "system:reconcile",
      action: "certificate.reconcile",
      target: row.serial,
      details: { reason: "intent recorded but no signed certificate was stored (crash or outage during issuance)", createdAt: row.createdAt.toISOString() },
    });
  }
  return stale.map((row) => row.serial);
}

/** Seconds between this machine's clock and the database server's (positive: we are ahead). */
export async function clockSkewSeconds(inventory: Inventory, clock: Clock): Promise<number> {
  const [row] = await inventory.sql.query<{ now: Date }>("SELECT now() AS now");
  return (clock.now().getTime() - new Date(row!.now).getTime()) / 1000;
}
