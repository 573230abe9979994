import { describe, expect, it } from "vitest";
import { NonceSupply } from "./nonces.ts";

const TTL = 30 * 60_000;

function supply(clock: { now: number }, batch = 4) {
  const stored: Array<{ values: string[]; expiresAt: Date }> = [];
  const nonces = new NonceSupply({
    store: async (values, expiresAt) => void stored.push({ values, expiresAt }),
    ttlMs: TTL,
    now: () => new Date(clock.now),
    batch,
  });
  return { nonces, stored };
}

describe("NonceSupply", () => {
  it("stores a batch in one call and hands out each stored nonce once", async () => {
    const clock = { now: Date.parse("2026-12-05T06:00:00Z") };
    const { nonces, stored } = supply(clock);
    const taken = [];
    for (let i = 0; i < 6; i++) taken.push(await nonces.take());
    expect(stored).toHaveLength(2);
    expect(new Set(taken).size).toBe(6);
    const all = stored.flatMap((s) => s.values);
    for (const nonce of taken) expect(all).toContain(nonce);
    expect(stored[0]?.expiresAt.getTime()).toBe(clock.now + TTL);
  });

  it("shares one batch between concurrent requests", async () => {
    const clock = { now: Date.parse("2026-12-05T06:00:00Z") };
    const { nonces, stored } = supply(clock);
    const taken = await Promise.all([nonces.take(), nonces.take(), nonces.take(), nonces.take()]);
    expect(stored).toHaveLength(1);
    expect(new Set(taken).size).toBe(4);
  });

  it("drops stored nonces with less than half their lifetime left", async () => {
    const clock = { now: Date.parse("2026-12-05T06:00:00Z") };
    const { nonces, stored } = supply(clock);
    await nonces.take();
    clock.now += TTL / 2 + 1;
    const later = await nonces.take();
    expect(stored).toHaveLength(2);
    expect(stored[1]?.values).toContain(later);
  });

  it("passes a storage failure to the request", async () => {
    const nonces = new NonceSupply({
      store: async () => {
        throw new Error("database unavailable");
      },
      ttlMs: TTL,
      now: () => new Date(),
    });
    await expect(nonces.take()).rejects.toThrow("database unavailable");
  });
});
