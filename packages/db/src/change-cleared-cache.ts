// Values read from the database kept in process memory until a change to their tables
// commits anywhere: a trigger on those tables notifies a channel (delivered on commit,
// never for a rollback) and any notification empties the cache. Correct only while it
// hears every change, so without a live listener (the embedded database, or while the
// connection is re-made) nothing is cached and every get reads the database.
import type { ChangeChannel, ChangeWatch } from "./notify.ts";

/** A listener that failed or was lost is made again at most this often. */
const RELISTEN_MS = 5_000;

export interface ChangeClearedCacheOptions {
  /** entries kept at most; the oldest goes first */
  maxEntries: number;
  /** even with a live listener, an entry is read again after this long */
  ttlMs: number;
  now?: () => number;
}

export class ChangeClearedCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private watch: ChangeWatch | undefined;
  private watching = false;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  /** bumped by every change, so a read that raced one is not cached */
  private generation = 0;
  private closed = false;
  private readonly now: () => number;

  constructor(
    private readonly source: { watch(channel: ChangeChannel, onChange: () => void): Promise<ChangeWatch | undefined> },
    private readonly channel: ChangeChannel,
    private readonly options: ChangeClearedCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The cached value for `key`, or `load`'s, cached while nothing changed in between.
   * `load` answers undefined for a key with no value; that is not cached (keys may come
   * from clients, and only real values can fill the cache).
   */
  async get(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.watch?.alive) {
      this.entries.clear();
      this.listen();
      return load();
    }
    const hit = this.entries.get(key);
    if (hit && hit.until > this.now()) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (value !== undefined && generation === this.generation && this.watch?.alive) {
      this.entries.delete(key);
      if (this.entries.size >= this.options.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(key, { value, until: this.now() + this.options.ttlMs });
    }
    return value;
  }

  /** Entries cached now (for tests). */
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
    this.source
      .watch(this.channel, () => {
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
