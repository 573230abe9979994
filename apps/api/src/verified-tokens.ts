// Bearer tokens this process has verified, so an enrolment costs no database round trip
// for its credential (it was most of the statements an issuance sent to PostgreSQL).
// Correct only while it hears every change: a trigger on admin_tokens and provisioners
// notifies on commit (channel `credentials`), and any notification empties the cache. Without
// a live listener (the embedded database, or while the connection is re-made) nothing is
// cached, so a removed or disabled credential never outlives its change here.
import { createHash } from "node:crypto";
import type { ChangeWatch, Inventory } from "@pki/db";

/** Entries kept at most: only valid tokens are cached, so only their holders can fill it. */
const MAX_ENTRIES = 10_000;
/** Even with a live listener, a token is verified again after this long. */
const ENTRY_TTL_MS = 60_000;
/** A listener that failed or was lost is made again at most this often. */
const RELISTEN_MS = 5_000;

export class VerifiedTokens<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private watch: ChangeWatch | undefined;
  private watching = false;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  /** bumped by every change, so a verification that raced one is not cached */
  private generation = 0;
  private closed = false;

  constructor(
    private readonly inventory: Pick<Inventory, "watch">,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The cached answer for `token`, or `verify`'s, cached while no credential changed in
   * between. `verify` answers undefined for a token that is not valid; that is not cached.
   */
  async get(token: string, verify: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.watch?.alive) {
      this.entries.clear();
      this.listen();
      return verify();
    }
    const key = createHash("sha256").update(token).digest("base64");
    const hit = this.entries.get(key);
    if (hit && hit.until > this.now()) return hit.value;
    const generation = this.generation;
    const value = await verify();
    if (value !== undefined && generation === this.generation && this.watch?.alive) {
      this.entries.delete(key);
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { value, until: this.now() + ENTRY_TTL_MS });
    }
    return value;
  }

  /** Tokens cached now (for tests). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
    await this.watch?.close();
  }

  private listen(): void {
    if (this.watching || this.closed || this.now() - this.lastAttempt < RELISTEN_MS) return;
    this.watching = true;
    this.lastAttempt = this.now();
    this.inventory
      .watch("credentials", () => {
        this.generation++;
        this.entries.clear();
      })
      .then(
        (watch) => {
          // undefined: the embedded database, which has no listener: never cache there
          if (!watch) this.lastAttempt = Number.POSITIVE_INFINITY;
          if (this.closed) void watch?.close();
          else this.watch = watch;
        },
        () => {},
      )
      .finally(() => {
        this.watching = false;
      });
  }
}
