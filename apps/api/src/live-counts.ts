// Live certificates per issuer (an issuer's blast radius) for operators. Counting them
// scans every valid certificate (hundreds of milliseconds at a few hundred thousand), so
// a process counts at most once per LIVE_COUNTS_MAX_AGE_MS, only when an operator asks,
// and callers arriving while a count runs share it instead of starting their own.
import { INTERNAL_CERTIFICATE_MARKS, type CaRuntime } from "@pki/authority";

/** How old a figure may be before the next operator's request counts again. */
export const LIVE_COUNTS_MAX_AGE_MS = 15_000;

export interface LiveCountsFigure {
  /** services' valid, unexpired certificates signed by each issuer (absent: none) */
  byIssuer: Map<string, number>;
  countedAt: Date;
}

export class LiveCounts {
  private latest: LiveCountsFigure | undefined;
  private counting: Promise<LiveCountsFigure> | undefined;
  /** bumped by invalidate(): a count that started before it is not kept as the latest */
  private generation = 0;

  constructor(
    private readonly runtime: CaRuntime,
    private readonly maxAgeMs = LIVE_COUNTS_MAX_AGE_MS,
  ) {}

  /** The latest figure if it is fresh enough, else a new count (shared with concurrent callers). */
  async get(): Promise<LiveCountsFigure> {
    const now = this.runtime.clock.now();
    if (this.latest && now.getTime() - this.latest.countedAt.getTime() < this.maxAgeMs) return this.latest;
    if (!this.counting) {
      const generation = this.generation;
      const counting = this.count(now)
        .then((figure) => {
          if (generation === this.generation) this.latest = figure;
          return figure;
        })
        .finally(() => {
          if (this.counting === counting) this.counting = undefined;
        });
      this.counting = counting;
    }
    return this.counting;
  }

  /** After a change this process made (rotation, revocation, re-issue): the next request counts again. */
  invalidate(): void {
    this.generation++;
    this.latest = undefined;
    this.counting = undefined;
  }

  private async count(now: Date): Promise<LiveCountsFigure> {
    return { byIssuer: await this.runtime.inventory.certificates.liveByIssuer(now, INTERNAL_CERTIFICATE_MARKS), countedAt: now };
  }
}

/**
 * What revoking each issuer affects: its own live certificates plus those of every issuer
 * below it, since all of them chain to it (a root's radius is its whole hierarchy).
 */
export function blastRadius(issuers: Array<{ id: string; parentId: string | null }>, byIssuer: Map<string, number>): Map<string, number> {
  const parentOf = new Map(issuers.map((i) => [i.id, i.parentId]));
  const radius = new Map<string, number>(issuers.map((i) => [i.id, 0]));
  for (const issuer of issuers) {
    const own = byIssuer.get(issuer.id) ?? 0;
    // Up the chain to the root; a root names itself (or nothing) as parent, and the visited set stops any loop.
    const seen = new Set<string>();
    for (let at: string | null | undefined = issuer.id; at && radius.has(at) && !seen.has(at); at = parentOf.get(at)) {
      seen.add(at);
      radius.set(at, (radius.get(at) ?? 0) + own);
    }
  }
  return radius;
}
