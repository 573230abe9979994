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
  it("finds slots far away at once, with names and day-of-week 7 read as node-cron reads them", () => {
    expect(nextFireAfter("0 0 29 2 *", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2028-02-29T00:00:00.000Z");
    expect(nextFireAfter("30 4 * * sun", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2026-11-29T04:30:00.000Z");
    expect(nextFireAfter("30 4 * * 7", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2026-11-29T04:30:00.000Z");
    expect(nextFireAfter("0 12 * jan mon", new Date("2026-11-23T10:00:00Z")).toISOString()).toBe("2027-01-04T12:00:00.000Z");
  });
  it("steps past a time that is itself a slot, even with milliseconds", () => {
    expect(nextFireAfter("*/5 * * * *", new Date("2026-11-23T10:05:00.000Z")).toISOString()).toBe("2026-11-23T10:10:00.000Z");
    expect(nextFireAfter("*/5 * * * *", new Date("2026-11-23T10:04:59.999Z")).toISOString()).toBe("2026-11-23T10:05:00.000Z");
  });
  it("honours a seconds field", () => {
    expect(nextFireAfter("*/10 * * * * *", new Date("2026-11-23T10:00:05Z")).toISOString()).toBe("2026-11-23T10:00:10.000Z");
  });
  it("refuses an expression that is not cron, naming the setting", () => {
    expect(() => assertCron("every five minutes", "PKI_SCHEDULE_RENEWAL")).toThrow(/PKI_SCHEDULE_RENEWAL: 'every five minutes' is not a valid cron expression/);
    expect(() => assertCron("0 12 1 * mon", "PKI_SCHEDULE_RENEWAL")).toThrow(/PKI_SCHEDULE_RENEWAL: '0 12 1 \* mon' restricts both day of month and day of week/);
    expect(() => assertCron("0 0 12 1 * mon", "PKI_SCHEDULE_RENEWAL")).toThrow(/restricts both/);
    assertCron("0 12 * jan mon", "PKI_SCHEDULE_RENEWAL");
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
