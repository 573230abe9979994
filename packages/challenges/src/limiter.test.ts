import { describe, expect, it } from "vitest";
import { ValidationLimiter, ValidationLimitError } from "./index.ts";

/** A validation the test finishes by hand, so counts are observed without timing. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("ValidationLimiter", () => {
  it("runs at most perAccount validations of one account and total overall, starting waiters as slots free", async () => {
    const limiter = new ValidationLimiter({ perAccount: 2, total: 3, maxQueued: 10 });
    const gates = Array.from({ length: 6 }, gate);
    const started: number[] = [];
    const job = (i: number, account: string) =>
      limiter.run(account, async () => {
        started.push(i);
        await gates[i]?.opened;
        return i;
      });
    const results = [job(0, "a"), job(1, "a"), job(2, "a"), job(3, "b"), job(4, "b"), job(5, "c")];
    await settle();
    // a: two run, one waits; b: one runs (total 3 reached), one waits; c waits.
    expect(started).toEqual([0, 1, 3]);
    expect({ inFlight: limiter.inFlight, queued: limiter.queued, accounts: limiter.accountsTracked }).toEqual({ inFlight: 3, queued: 3, accounts: 2 });
    gates[0]?.open();
    await settle();
    // The freed slot goes to the first waiter that fits: a's third.
    expect(started).toEqual([0, 1, 3, 2]);
    gates[3]?.open();
    await settle();
    expect(started).toEqual([0, 1, 3, 2, 4]);
    for (const g of gates) g.open();
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5]);
    expect({ inFlight: limiter.inFlight, queued: limiter.queued, accounts: limiter.accountsTracked }).toEqual({ inFlight: 0, queued: 0, accounts: 0 });
  });

  it("lets other accounts pass an account that is at its bound", async () => {
    const limiter = new ValidationLimiter({ perAccount: 1, total: 2, maxQueued: 10 });
    const g = gate();
    const started: string[] = [];
    const first = limiter.run("busy", async () => {
      started.push("busy-1");
      await g.opened;
    });
    const second = limiter.run("busy", async () => void started.push("busy-2"));
    const other = limiter.run("other", async () => void started.push("other"));
    await other;
    expect(started).toEqual(["busy-1", "other"]);
    g.open();
    await Promise.all([first, second]);
    expect(started).toEqual(["busy-1", "other", "busy-2"]);
  });

  it("refuses work beyond maxQueued instead of queueing without bound", async () => {
    const limiter = new ValidationLimiter({ perAccount: 1, total: 1, maxQueued: 2 });
    const g = gate();
    const running = [limiter.run("a", () => g.opened), limiter.run("a", () => g.opened), limiter.run("b", () => g.opened)];
    await expect(limiter.run("c", async () => "never")).rejects.toBeInstanceOf(ValidationLimitError);
    expect(limiter.queued).toBe(2);
    g.open();
    await Promise.all(running);
  });

  it("frees the slot when a validation throws", async () => {
    const limiter = new ValidationLimiter({ perAccount: 1, total: 1, maxQueued: 1 });
    await expect(limiter.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.run("a", async () => "next")).toBe("next");
  });

  it("keys the per-account map by a bounded key whatever the account key's length", async () => {
    const limiter = new ValidationLimiter({ perAccount: 1, total: 10, maxQueued: 10 });
    const g = gate();
    const huge = "k".repeat(1_000_000);
    const first = limiter.run(huge, () => g.opened);
    const started: string[] = [];
    // the same huge key maps to the same account, so its second validation waits
    const second = limiter.run(huge, async () => void started.push("second"));
    await settle();
    expect(started).toEqual([]);
    const keys = [...(limiter as unknown as { running: Map<string, number> }).running.keys()];
    expect(keys.every((k) => k.length <= 128)).toBe(true);
    g.open();
    await Promise.all([first, second]);
    expect(started).toEqual(["second"]);
  });
});
