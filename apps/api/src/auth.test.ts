import { describe, expect, it } from "vitest";
import { AuthFailureLimiter } from "./auth.ts";

describe("AuthFailureLimiter", () => {
  it("blocks a source after the limit within a window, only that source, until the window ends", () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter(3, 60_000, () => now);
    for (let i = 0; i < 2; i++) limiter.recordFailure("10.0.0.1");
    expect(limiter.retryAfter("10.0.0.1")).toBeUndefined();
    limiter.recordFailure("10.0.0.1");
    expect(limiter.retryAfter("10.0.0.1")).toBe(60);
    expect(limiter.retryAfter("10.0.0.2")).toBeUndefined();
    now += 45_000;
    expect(limiter.retryAfter("10.0.0.1")).toBe(15);
    now += 15_000;
    expect(limiter.retryAfter("10.0.0.1")).toBeUndefined();
    limiter.recordFailure("10.0.0.1");
    expect(limiter.retryAfter("10.0.0.1")).toBeUndefined();
  });
});
