import { describe, expect, it } from "vitest";
import { AuthFailureLimiter } from "./failure-limiter.ts";

describe("AuthFailureLimiter", () => {
  it("answers 429 (seconds left) for a source's failures past the limit, only that source, until the window ends", () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) expect(limiter.recordFailure("10.0.0.1")).toBeUndefined();
    expect(limiter.recordFailure("10.0.0.1")).toBe(60);
    expect(limiter.recordFailure("10.0.0.2")).toBeUndefined();
    now += 45_000;
    expect(limiter.recordFailure("10.0.0.1")).toBe(15);
    now += 15_000;
    // a new window: counted from one again
    expect(limiter.recordFailure("10.0.0.1")).toBeUndefined();
  });

  it("tracks at most maxSources addresses, forgetting expired windows first, then the oldest", () => {
    let now = 0;
    const limiter = new AuthFailureLimiter(1, 60_000, () => now, 100);
    for (let i = 0; i < 100; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    for (let i = 0; i < 5_000; i++) limiter.recordFailure(`10.1.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    // the newest source is still tracked: its second failure in the window is over the limit
    expect(limiter.recordFailure("10.1.19.135")).toBe(60);
    now += 60_000;
    limiter.recordFailure("192.0.2.1");
    expect(limiter.size).toBe(1);
  });
});
