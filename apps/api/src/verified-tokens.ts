// Bearer tokens this process has verified, so an enrolment costs no database round trip
// for its credential (it was most of the statements an issuance sent to PostgreSQL).
// Correct only while it hears every change: a trigger on admin_tokens and provisioners
// notifies on commit (channel `credentials`), and any notification empties the cache (see
// ChangeClearedCache). Without a live listener (the embedded database, or while the
// connection is re-made) nothing is cached, so a removed or disabled credential never
// outlives its change here. Tokens are kept by their SHA-256, never as they are.
import { createHash } from "node:crypto";
import { ChangeClearedCache, type Inventory } from "@pki/db";

/** Entries kept at most: only valid tokens are cached, so only their holders can fill it. */
const MAX_ENTRIES = 10_000;
/** Even with a live listener, a token is verified again after this long. */
const ENTRY_TTL_MS = 60_000;

export class VerifiedTokens<T> extends ChangeClearedCache<T> {
  constructor(inventory: Pick<Inventory, "watch">, now: () => number = Date.now) {
    super(inventory, "credentials", { maxEntries: MAX_ENTRIES, ttlMs: ENTRY_TTL_MS, now });
  }

  /**
   * The cached answer for `token`, or `verify`'s, cached while no credential changed in
   * between. `verify` answers undefined for a token that is not valid; that is not cached.
   */
  override get(token: string, verify: () => Promise<T | undefined>): Promise<T | undefined> {
    return super.get(createHash("sha256").update(token).digest("base64"), verify);
  }
}
