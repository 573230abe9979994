// Failed authentications counted per source address. Its own module, free of the CA's
// packages, because the API's cluster primary (which holds no database pool or token)
// counts them for all of its workers.
/**
 * Counts failed authentications per source address in fixed one-minute windows. Past the
 * limit, a source's failing attempts are answered 429 (Retry-After) instead of 401 and
 * are no longer logged one by one, which tells clients to back off and keeps a guessing
 * source from flooding the log. Valid credentials always pass: the limit is only ever
 * applied after a credential has failed, so a bad neighbour behind the same NAT or load
 * balancer cannot lock out the operator or a renewal. (Guessing stays hopeless: tokens
 * are at least 16 characters, those the CA makes 256 random bits.)
 *
 * Bounded: at most `maxSources` addresses are tracked; when full, expired windows go
 * first, then the oldest. A key is a socket address, never client-chosen text.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxSources = 10_000,
  ) {}

  /**
   * Counts a failed attempt. Returns the seconds until the window ends when the source is
   * now past the limit (answer 429), or undefined while it is within it (answer 401).
   */
  recordFailure(source: string): number | undefined {
    const key = source.slice(0, 64);
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxSources) this.makeRoom(now);
      window = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return window.count > this.limit ? Math.max(1, Math.ceil((window.resetAt - now) / 1000)) : undefined;
  }

  /** Sources tracked right now (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  private makeRoom(now: number): void {
    for (const [source, window] of this.windows) if (window.resetAt <= now) this.windows.delete(source);
    // Still full: forget the oldest windows (Map keeps insertion order).
    for (const source of this.windows.keys()) {
      if (this.windows.size < this.maxSources) break;
      this.windows.delete(source);
    }
  }
}

/**
 * Where failed authentications are counted: this process's AuthFailureLimiter, or, in an
 * API worker, the cluster primary's, so a source gets the same limit however many workers
 * share the port. Resolves as AuthFailureLimiter.recordFailure does.
 */
export interface FailureCounter {
  recordFailure(source: string): number | undefined | Promise<number | undefined>;
}
