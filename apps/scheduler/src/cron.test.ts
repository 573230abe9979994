import { describe, expect, it } from "vitest";
import { assertCron, nextFireAfter } from "./cron.ts";
import { crossedThresholds } from "./jobs.ts";
import { retryDelaySeconds } from "./webhook.ts";

const DAY = 86_400_000;

describe("nextFireAfter", () => {
  it("finds the next slot strictly after the given time, in UTC", () => {
    expect(nextFireAfter("*/5 * * * *", new Date("2026-11-23T10:03:12Z")).toISOString()).toBe("2026-11-23T10:05:00.000Z");
    expect(nextFireAfter("0 * * * *", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2026-11-23T11:00:00.000Z");
    expect(nextFireAfter("0 3 1 * *", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2026-12-01T03:00:00.000Z");
  });
  it("honours a seconds field", () => {
    expect(nextFireAfter("*/10 * * * * *", new Date("2026-11-23T10:00:05Z")).toISOString()).toBe("2026-11-23T10:00:10.000Z");
  });
  it("refuses an expression that is not cron, naming the setting", () => {
    expect(() => assertCron("every five minutes", "PKI_SCHEDULE_RENEWAL")).toThrow(/PKI_SCHEDULE_RENEWAL: 'every five minutes' is not a valid cron expression/);
  });
});

describe("crossedThresholds", () => {
  const notBefore = new Date("2026-11-01T00:00:00Z");
  const notAfter = new Date(notBefore.getTime() + 30 * DAY);
  it("lists the thresholds passed, most urgent first", () => {
    expect(crossedThresholds([7, 3, 1], notBefore, notAfter, new Date(notAfter.getTime() - 8 * DAY))).toEqual([]);
    expect(crossedThresholds([7, 3, 1], notBefore, notAfter, new Date(notAfter.getTime() - 6 * DAY))).toEqual([7]);
    expect(crossedThresholds([7, 3, 1], notBefore, notAfter, new Date(notAfter.getTime() - DAY / 2))).toEqual([1, 3, 7]);
  });
  it("skips thresholds longer than the certificate ever had, backdating included", () => {
    const dayLong = new Date(notBefore.getTime() + DAY + 60_000);
    expect(crossedThresholds([7, 3, 1], notBefore, dayLong, new Date(notBefore.getTime() + 3_600_000))).toEqual([]);
    const tenDays = new Date(notBefore.getTime() + 10 * DAY);
    expect(crossedThresholds([7, 3, 1], notBefore, tenDays, new Date(notBefore.getTime() + 1000))).toEqual([]);
  });
});

describe("retryDelaySeconds", () => {
  it("doubles from 30 s up to the bound", () => {
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(n, 3600))).toEqual([30, 60, 120, 240]);
    expect(retryDelaySeconds(20, 3600)).toBe(3600);
  });
});
