import { describe, expect, it } from "vitest";
import { AuthFailureLimiter } from "./failure-limiter.ts";

describe("AuthFailureLimiter", () => {
  it("answers 429 (seconds to the next check) for a source's failures past the limit, only that source, until it is quiet for a window", () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter(3, { windowMs: 60_000, now: () => now, firstDelayMs: 1_000, maxDelayMs: 8_000 });
    for (let i = 0; i < 3; i++) expect(limiter.recordFailure("10.0.0.1")).toBeUndefined();
    expect(limiter.recordFailure("10.0.0.1")).toBe(1);
    expect(limiter.recordFailure("10.0.0.2")).toBeUndefined();
    // each failure past the limit doubles the interval
    expect(limiter.recordFailure("10.0.0.1")).toBe(2);
    expect(limiter.recordFailure("10.0.0.1")).toBe(4);
    expect(limiter.recordFailure("10.0.0.1")).toBe(8);
    expect(limiter.recordFailure("10.0.0.1")).toBe(8);
    // a new window does not forgive a source that kept failing...
    now += 30_000;
    expect(limiter.recordFailure("10.0.0.1")).toBe(8);
    now += 40_000;
    expect(limiter.recordFailure("10.0.0.1")).toBe(8);
    // ...a whole quiet window does
    now += 60_000;
    expect(limiter.recordFailure("10.0.0.1")).toBeUndefined();
  });

  it("admits `limit` concurrent checks, then one per interval, refusing unchecked any further than maxWaitMs away", () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(3, { now: () => now, firstDelayMs: 1_000, maxDelayMs: 4_000, maxWaitMs: 2_000 });
    const burst = Array.from({ length: 10 }, () => limiter.admit("10.0.0.1"));
    // three checks at once, then one a second as far as two seconds ahead, the rest unchecked
    expect(burst).toEqual([{ waitMs: 0 }, { waitMs: 0 }, { waitMs: 0 }, { waitMs: 0 }, { waitMs: 1_000 }, { waitMs: 2_000 }, ...Array(4).fill({ refuseForSeconds: 3 })]);
    expect(limiter.admit("10.0.0.2")).toEqual({ waitMs: 0 });
    for (let i = 0; i < 6; i++) limiter.recordFailure("10.0.0.1", true);
    now = 1_000;
    // each failure past the limit pushed the next turn further: 4 s after the last one
    expect(limiter.admit("10.0.0.1")).toEqual({ refuseForSeconds: 3 });
    now = 2_500;
    expect(limiter.admit("10.0.0.1")).toEqual({ waitMs: 1_500 });
  });

  it("does not count a check whose credential was accepted", () => {
    const limiter = new AuthFailureLimiter(2, { now: () => 0 });
    for (let i = 0; i < 50; i++) {
      expect(limiter.admit("10.0.0.1")).toEqual({ waitMs: 0 });
      limiter.accepted("10.0.0.1");
    }
    expect(limiter.recordFailure("10.0.0.1")).toBeUndefined();
  });

  it("tracks at most maxSources addresses, forgetting quiet ones first, then the oldest", () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(1, { windowMs: 60_000, now: () => now, maxSources: 100 });
    for (let i = 0; i < 100; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    for (let i = 0; i < 5_000; i++) limiter.recordFailure(`10.1.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    // the newest source is still tracked: its second failure in the window is over the limit
    expect(limiter.recordFailure("10.1.19.135")).toBe(1);
    now += 60_000;
    limiter.recordFailure("192.0.2.1");
    expect(limiter.size).toBe(1);
  });
});
