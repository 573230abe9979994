import { describe, expect, it } from "vitest";
import { isDatabaseOutage } from "./errors.ts";

const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code });

describe("isDatabaseOutage", () => {
  it("is true for connection loss, refused connections, shutdowns and pool timeouts, also when wrapped", () => {
    expect(isDatabaseOutage(pgError("ECONNREFUSED"))).toBe(true);
    expect(isDatabaseOutage(pgError("57P01", "terminating connection due to administrator command"))).toBe(true);
    expect(isDatabaseOutage(pgError("08006"))).toBe(true);
    expect(isDatabaseOutage(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(isDatabaseOutage(new Error("timeout exceeded when trying to connect"))).toBe(true);
    expect(isDatabaseOutage(new Error("query failed", { cause: pgError("ECONNRESET") }))).toBe(true);
  });

  it("is false for statements the database refused: bad input or a bug is not an outage", () => {
    expect(isDatabaseOutage(pgError("22021", 'invalid byte sequence for encoding "UTF8": 0x00'))).toBe(false);
    expect(isDatabaseOutage(pgError("22008", "timestamp out of range"))).toBe(false);
    expect(isDatabaseOutage(pgError("23505", "duplicate key value violates unique constraint"))).toBe(false);
    expect(isDatabaseOutage(pgError("42703", "column does not exist"))).toBe(false);
    expect(isDatabaseOutage(new RangeError("Invalid time value"))).toBe(false);
    expect(isDatabaseOutage(undefined)).toBe(false);
  });
});
