import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NONCE_CHARS, NonceMinter } from "./nonces.ts";

const key = randomBytes(32);
const TTL = 30 * 60_000;

describe("NonceMinter", () => {
  it("accepts its own nonces until they expire, and tells when", () => {
    let now = Date.parse("2026-12-08T00:00:00Z");
    const minter = new NonceMinter(key, TTL, () => new Date(now));
    const nonce = minter.mint();
    expect(nonce).toHaveLength(NONCE_CHARS);
    expect(minter.check(nonce)?.getTime()).toBe(now + TTL);
    now += TTL - 1;
    expect(minter.check(nonce)).toBeDefined();
    now += 1;
    expect(minter.check(nonce)).toBeUndefined();
  });

  it("hands out a different nonce each time", () => {
    const minter = new NonceMinter(key, TTL, () => new Date());
    const nonces = new Set(Array.from({ length: 1000 }, () => minter.mint()));
    expect(nonces.size).toBe(1000);
  });

  it("refuses nonces of another key, altered ones (a later expiry included), and anything not a nonce", () => {
    const minter = new NonceMinter(key, TTL, () => new Date());
    const other = new NonceMinter(randomBytes(32), TTL, () => new Date());
    expect(minter.check(other.mint())).toBeUndefined();
    const bytes = Buffer.from(minter.mint(), "base64url");
    bytes[0] = (bytes[0] as number) ^ 1; // the expiry's top byte: a nonce that would live for years
    expect(minter.check(bytes.toString("base64url"))).toBeUndefined();
    for (const junk of [undefined, 42, "", "a".repeat(NONCE_CHARS), `${minter.mint()}x`, minter.mint().slice(1), "+/+/".repeat(11)]) expect(minter.check(junk)).toBeUndefined();
  });
});
