import { describe, expect, it } from "vitest";
import { ValidationLimiter, ValidationLimitError, type ValidationLimits } from "./index.ts";

/** A validation the test finishes by hand, so counts are observed without timing. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const limits = (overrides: Partial<ValidationLimits>): ValidationLimits => ({ running: 10, runningPerAccount: 10, pendingPerAccount: 100, pendingPerProvisioner: 1000, ...overrides });

/** Reserves and runs a validation that records its start and waits for its gate. */
function runner(limiter: ValidationLimiter, started: string[]) {
  const gates = new Map<string, ReturnType<typeof gate>>();
  const job = (name: string, account: string, provisioner = "p") => {
    const g = gate();
    gates.set(name, g);
    const reservation = limiter.reserve({ account, provisioner });
    return reservation.run(async () => {
      started.push(name);
      await g.opened;
      return name;
    });
  };
  return { job, open: (name: string) => gates.get(name)?.open(), openAll: () => gates.forEach((g) => g.open()) };
}

describe("ValidationLimiter", () => {
  it("runs at most runningPerAccount of one account and `running` overall, starting waiters as slots free", async () => {
    const limiter = new ValidationLimiter(limits({ runningPerAccount: 2, running: 3 }));
    const started: string[] = [];
    const { job, open, openAll } = runner(limiter, started);
    const results = [job("a0", "a"), job("a1", "a"), job("a2", "a"), job("b0", "b"), job("b1", "b"), job("c0", "c")];
    await settle();
    // a: two run, one waits; b: one runs (3 running reached), one waits; c waits.
    expect(started).toEqual(["a0", "a1", "b0"]);
    expect({ inFlight: limiter.inFlight, queued: limiter.queued, accounts: limiter.accountsTracked }).toEqual({ inFlight: 3, queued: 3, accounts: 3 });
    open("a0");
    await settle();
    expect(started).toHaveLength(4);
    openAll();
    expect((await Promise.all(results)).sort()).toEqual(["a0", "a1", "a2", "b0", "b1", "c0"]);
    expect({ inFlight: limiter.inFlight, queued: limiter.queued, accounts: limiter.accountsTracked }).toEqual({ inFlight: 0, queued: 0, accounts: 0 });
  });

  it("hands freed slots out in turns, so an account that queued a lot does not go ahead of one that came later", async () => {
    const limiter = new ValidationLimiter(limits({ running: 1 }));
    const started: string[] = [];
    const { job, open, openAll } = runner(limiter, started);
    const flood = Array.from({ length: 8 }, (_, i) => job(`flood${i}`, "attacker"));
    await settle();
    const honest = job("honest", "victim");
    await settle();
    expect(started).toEqual(["flood0"]);
    open("flood0");
    await settle();
    // the next slot is the victim's, not the attacker's second
    expect(started).toEqual(["flood0", "honest"]);
    openAll();
    await Promise.all([...flood, honest]);
  });

  it("takes turns between provisioners before accounts, so one provisioner's many accounts do not crowd out another's", async () => {
    const limiter = new ValidationLimiter(limits({ running: 1 }));
    const started: string[] = [];
    const { job, open, openAll } = runner(limiter, started);
    const all = [job("x0", "x0", "busy"), job("x1", "x1", "busy"), job("x2", "x2", "busy"), job("x3", "x3", "busy")];
    await settle();
    all.push(job("quiet", "q", "quiet"));
    open("x0");
    await settle();
    expect(started).toEqual(["x0", "quiet"]);
    openAll();
    await Promise.all(all);
  });

  it("refuses the account at its pending bound, and only that account", async () => {
    const limiter = new ValidationLimiter(limits({ running: 1, pendingPerAccount: 3 }));
    const started: string[] = [];
    const { job, openAll } = runner(limiter, started);
    const held = [job("a0", "a"), job("a1", "a"), job("a2", "a")];
    let refused: unknown;
    try {
      limiter.reserve({ account: "a", provisioner: "p" });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ValidationLimitError);
    expect((refused as ValidationLimitError).scope).toBe("account");
    // another account of the same provisioner still gets a place
    held.push(job("b0", "b"));
    openAll();
    await Promise.all(held);
  });

  it("refuses a provisioner's accounts at the provisioner's bound, and leaves other provisioners alone", async () => {
    const limiter = new ValidationLimiter(limits({ running: 1, pendingPerProvisioner: 4 }));
    const started: string[] = [];
    const { job, openAll } = runner(limiter, started);
    const held = [0, 1, 2, 3].map((i) => job(`s${i}`, `sybil${i}`, "open"));
    expect(() => limiter.reserve({ account: "sybil9", provisioner: "open" })).toThrow(expect.objectContaining({ scope: "provisioner" }));
    held.push(job("other", "someone", "other"));
    openAll();
    await Promise.all(held);
    expect(started).toContain("other");
  });

  it("gives a cancelled reservation's place back, and frees the slot when a validation throws", async () => {
    const limiter = new ValidationLimiter(limits({ running: 1, pendingPerAccount: 1 }));
    limiter.reserve({ account: "a", provisioner: "p" }).cancel();
    await expect(limiter.reserve({ account: "a", provisioner: "p" }).run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.reserve({ account: "a", provisioner: "p" }).run(async () => "next")).toBe("next");
    expect(limiter.accountsTracked).toBe(0);
  });

  it("keys accounts by a bounded key whatever the account key's length", async () => {
    const limiter = new ValidationLimiter(limits({ runningPerAccount: 1 }));
    const started: string[] = [];
    const { job, open } = runner(limiter, started);
    const huge = "k".repeat(1_000_000);
    const first = job("first", huge);
    // the same huge key maps to the same account, so its second validation waits
    const second = job("second", huge);
    await settle();
    expect(started).toEqual(["first"]);
    const provisioners = (limiter as unknown as { provisioners: Map<string, { accounts: Map<string, unknown> }> }).provisioners;
    const keys = [...provisioners.values()].flatMap((p) => [...p.accounts.keys()]);
    expect(keys.every((k) => k.length <= 128)).toBe(true);
    open("first");
    await settle();
    open("second");
    await Promise.all([first, second]);
    expect(started).toEqual(["first", "second"]);
  });
});
