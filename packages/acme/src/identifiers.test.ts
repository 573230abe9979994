import { describe, expect, it } from "vitest";
import { canonicalIp, normaliseIdentifiers } from "./identifiers.ts";
import { AcmeProblem } from "./problems.ts";

const refusal = (raw: unknown): AcmeProblem => {
  try {
    normaliseIdentifiers(raw);
  } catch (error) {
    if (error instanceof AcmeProblem) return error;
    throw error;
  }
  throw new Error("expected a refusal");
};

describe("order identifiers", () => {
  it("lower-cases DNS names, canonicalises addresses and drops duplicates", () => {
    expect(
      normaliseIdentifiers([
        { type: "dns", value: "WWW.Example.com" },
        { type: "dns", value: "www.example.com" },
        { type: "ip", value: "2001:DB8:0:0:0:0:0:1" },
        { type: "dns", value: "*.example.com" },
      ]),
    ).toEqual([
      { type: "dns", value: "www.example.com" },
      { type: "ip", value: "2001:db8::1" },
      { type: "dns", value: "*.example.com" },
    ]);
  });

  it("refuses each bad identifier as a subproblem naming it", () => {
    const problem = refusal([
      { type: "dns", value: "a.*.example.com" },
      { type: "dns", value: "10.0.0.1" },
      { type: "email", value: "a@example.com" },
      { type: "ip", value: "010.0.0.1" },
    ]);
    expect(problem.type).toBe("malformed");
    expect(problem.subproblems?.map((s) => [s.type.split(":").pop(), s.identifier.value])).toEqual([
      ["rejectedIdentifier", "a.*.example.com"],
      ["malformed", "10.0.0.1"],
      ["unsupportedIdentifier", "a@example.com"],
      ["malformed", "010.0.0.1"],
    ]);
  });

  it("refuses an empty list, a non-list and more than 100 identifiers", () => {
    expect(refusal([]).type).toBe("malformed");
    expect(refusal("www.example.com").type).toBe("malformed");
    expect(refusal(Array.from({ length: 101 }, (_, i) => ({ type: "dns", value: `h${i}.example.com` }))).type).toBe("rejectedIdentifier");
  });

  it("reads only canonical IPv4 and any IPv6 spelling", () => {
    expect(canonicalIp("10.0.0.1")).toBe("10.0.0.1");
    expect(canonicalIp("10.0.0.01")).toBeUndefined();
    expect(canonicalIp("::FFFF:10.0.0.1")).toBe("::ffff:a00:1");
    expect(canonicalIp("example.com")).toBeUndefined();
  });
});
