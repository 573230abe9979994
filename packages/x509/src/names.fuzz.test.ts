// Property tests over SAN checks: a URI that is accepted and starts with a prefix stays
// under that prefix when an independent normaliser (WHATWG URL, as HTTP clients and
// SPIFFE libraries resolve paths) reads it; and no value makes the checks throw.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sanProblem, type SanType } from "./names.ts";
import { FUZZ } from "./fuzz-settings.ts";

const PREFIXES = ["https://id.example/ns/a/", "spiffe://prod.example/ns/payments/"];
// the pieces that spell a path in more than one way
const PIECES = ["/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "a", "B", "-", "_", "~", "%7E", "?", "#", ";", "%", "%25", " ", "é", "//"];

describe("SAN checks, property-tested", () => {
  it("an accepted URI that starts with a prefix resolves under that prefix", () => {
    fc.assert(
      fc.property(fc.constantFrom(...PREFIXES), fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }), (prefix, pieces) => {
        const uri = prefix + pieces.join("");
        if (sanProblem({ type: "URI", value: uri }) !== undefined) return;
        // WHATWG URL resolves dot segments (also %2e) only for special schemes; read the path as https
        const resolved = new URL(uri.replace(/^spiffe:/, "https:"));
        const under = new URL(prefix.replace(/^spiffe:/, "https:"));
        expect(resolved.host).toBe(under.host);
        expect(resolved.pathname.startsWith(under.pathname), uri).toBe(true);
        expect(
          resolved.pathname.split("/").some((s) => s === "." || s === ".."),
          uri,
        ).toBe(false);
      }),
      { numRuns: FUZZ.runs, seed: FUZZ.seed },
    );
  });

  it("never throws, whatever the value", () => {
    fc.assert(
      fc.property(fc.constantFrom<SanType>("DNS", "IP", "URI", "email"), fc.string({ unit: "binary", maxLength: 300 }), (type, value) => {
        const problem = sanProblem({ type, value });
        expect(problem === undefined || typeof problem === "string").toBe(true);
      }),
      { numRuns: FUZZ.runs, seed: FUZZ.seed },
    );
  });
});
