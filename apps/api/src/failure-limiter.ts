// Failed authentications counted per source address. Its own module, free of the CA's
// packages, because the API's cluster primary (which holds no database pool or token)
// counts them for all of its workers.

/** When a secret credential may be checked (after `waitMs`), or that it is refused unchecked. */
export type Admission = { waitMs: number } | { refuseForSeconds: number };

export interface PacingOptions {
  windowMs?: number;
  now?: () => number;
  maxSources?: number;
  /** the interval between checks once a source is past the limit; doubles with each failure there */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** a check further away than this is refused unchecked instead of waited for */
  maxWaitMs?: number;
}

interface SourceState {
  /** failed (or admitted and not yet accepted) checks in this window */
  failures: number;
  resetAt: number;
  /** failures past the limit: they set the interval between checks, and outlive the window */
  strikes: number;
  lastFailureAt: number;
  /** the earliest a further check of this source's credentials may start */
  nextCheckAt: number;
}

/**
 * Counts failed authentications per source address in fixed one-minute windows, and paces
 * the checking of secret credentials (tokens, session cookies) from a source past the limit,
 * so it cannot have guesses checked faster than a growing interval, whatever its concurrency.
 *
 * A check is counted as a failure when it is admitted and uncounted once the credential is
 * accepted, so a burst of concurrent guesses gets `limit` checks at most, not one per
 * connection. Past the limit, checks start one at a time: the first after `firstDelayMs`,
 * and each failure doubles the interval up to `maxDelayMs`; a request whose turn is more
 * than `maxWaitMs` away is refused unchecked. The pace holds until the source has gone a
 * whole window without a failure. Valid credentials are not locked out: one already
 * accepted from the source is checked at once by the caller (CredentialGate) without
 * asking here; any other waits its turn like a guess, since nothing tells them apart
 * before the check.
 *
 * Bounded: at most `maxSources` addresses are tracked; when full, sources without a
 * failure in the last window go first, then the oldest. A key is a socket address, never
 * client-chosen text.
 */
export class AuthFailureLimiter {
  private readonly sources = new Map<string, SourceState>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxSources: number;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxWaitMs: number;

  constructor(
    private readonly limit: number,
    options: PacingOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.maxSources = options.maxSources ?? 10_000;
    this.firstDelayMs = options.firstDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.maxWaitMs = options.maxWaitMs ?? 10_000;
  }

  /**
   * Before a secret credential from `source` is checked: when it may be, or that it is
   * refused unchecked. An admitted check counts as a failure until `accepted` is called.
   */
  admit(source: string): Admission {
    const now = this.now();
    const state = this.stateOf(source, now);
    if (state.strikes === 0 && state.failures < this.limit) {
      state.failures += 1;
      return { waitMs: 0 };
    }
    const waitMs = Math.max(0, state.nextCheckAt - now);
    if (waitMs > this.maxWaitMs) return { refuseForSeconds: Math.ceil(waitMs / 1000) };
    state.nextCheckAt = now + waitMs + this.delay(Math.max(1, state.strikes));
    state.failures += 1;
    return { waitMs };
  }

  /** The admitted credential was valid: its check is not a failure. */
  accepted(source: string): void {
    const state = this.sources.get(source.slice(0, 64));
    if (state && state.failures > 0) state.failures -= 1;
  }

  /**
   * Counts a failed attempt (`admitted`: already counted by `admit`). Returns the seconds
   * until the source's next check when it is now past the limit (answer 429), or
   * undefined while it is within it (answer 401).
   */
  recordFailure(source: string, admitted = false): number | undefined {
    const now = this.now();
    const state = this.stateOf(source, now);
    if (!admitted) state.failures += 1;
    state.lastFailureAt = now;
    if (state.strikes === 0 && state.failures <= this.limit) return undefined;
    state.strikes += 1;
    state.nextCheckAt = Math.max(state.nextCheckAt, now + this.delay(state.strikes));
    return Math.max(1, Math.ceil((state.nextCheckAt - now) / 1000));
  }

  /** Sources tracked right now (for tests and metrics). */
  get size(): number {
    return this.sources.size;
  }

  private delay(strikes: number): number {
    return Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** Math.min(strikes - 1, 30));
  }

  private stateOf(source: string, now: number): SourceState {
    const key = source.slice(0, 64);
    let state = this.sources.get(key);
    if (!state) {
      if (this.sources.size >= this.maxSources) this.makeRoom(now);
      state = { failures: 0, resetAt: now + this.windowMs, strikes: 0, lastFailureAt: Number.NEGATIVE_INFINITY, nextCheckAt: 0 };
      this.sources.set(key, state);
    } else if (state.resetAt <= now) {
      state.failures = 0;
      state.resetAt = now + this.windowMs;
      if (now - state.lastFailureAt >= this.windowMs) {
        state.strikes = 0;
        state.nextCheckAt = 0;
      }
    }
    return state;
  }

  private makeRoom(now: number): void {
    for (const [source, state] of this.sources) if (state.resetAt <= now && now - state.lastFailureAt >= this.windowMs) this.sources.delete(source);
    // Still full: forget the oldest sources (Map keeps insertion order).
    for (const source of this.sources.keys()) {
      if (this.sources.size < this.maxSources) break;
      this.sources.delete(source);
    }
  }
}

/**
 * Where failed authentications are counted and checks paced: this process's
 * AuthFailureLimiter, or, in an API worker, the cluster primary's, so a source gets the
 * same limit however many workers share the port. Answers as AuthFailureLimiter does.
 */
export interface FailureCounter {
  admit(source: string): Admission | Promise<Admission>;
  accepted(source: string): void;
  recordFailure(source: string, admitted?: boolean): number | undefined | Promise<number | undefined>;
}
