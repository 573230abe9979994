import { describe, expect, it } from "vitest";
import { CaError } from "@pki/x509";
import { assertAdminName, newAdminToken } from "./index.ts";

describe("operator names and tokens", () => {
  it("accepts the names pki admin documents and refuses others with a bad request naming them", () => {
    for (const name of ["alice", "a", "ops.bob_2-x", `a${"b".repeat(62)}`]) expect(assertAdminName(name)).toBe(name);
    for (const name of ["", "Alice", "1ops", "-x", "a b", "ali<ce>", `a${"b".repeat(63)}`, "é"]) {
      const error = (() => {
        try {
          assertAdminName(name);
        } catch (e) {
          return e;
        }
      })();
      expect(error, name).toBeInstanceOf(CaError);
      expect((error as CaError).kind).toBe("bad_request");
      expect((error as CaError).message).toContain("is not an admin name");
    }
  });

  it("cuts a long refused name in its message", () => {
    expect(() => assertAdminName("X".repeat(10_000))).toThrow(/^'X{80}' is not an admin name/);
  });

  it("makes 256-bit tokens with a recognisable prefix, never the same twice", () => {
    const a = newAdminToken();
    expect(a).toMatch(/^pki_admin_[A-Za-z0-9_-]{43}$/);
    expect(newAdminToken()).not.toBe(a);
  });
});
