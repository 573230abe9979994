import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { parseCsr } from "./csr.ts";
import { pemBlocks, toPem } from "./der.ts";

const csrError = (text: string) => {
  try {
    parseCsr(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("accepted");
};

describe("PEM blocks", () => {
  it("decodes the wanted labels in order, skipping others and surrounding text", () => {
    const text = `junk\n${toPem(Buffer.from("one"), "CERTIFICATE")}between\n${toPem(Buffer.from("key"), "PRIVATE KEY")}${toPem(Buffer.from("two"), "CERTIFICATE")}trailing ----- dashes`;
    expect(pemBlocks(text, ["CERTIFICATE"]).map(String)).toEqual(["one", "two"]);
    // one line, as some tools paste it
    expect(pemBlocks("-----BEGIN X----- b25l -----END X-----", ["X"]).map(String)).toEqual(["one"]);
  });

  it("names what is wrong with a broken structure", () => {
    expect(() => pemBlocks("-----BEGIN X-----\nAAAA\n", ["X"])).toThrow("PEM block X has no END line");
    expect(() => pemBlocks("-----BEGIN X-----\n-----BEGIN X-----\n-----END X-----", ["X"])).toThrow("PEM block X has no END line before the next BEGIN");
    expect(() => pemBlocks("-----BEGIN X-----\nAAAA\n-----END Y-----", ["X"])).toThrow("PEM block X ends with an END line for Y");
    expect(() => pemBlocks("-----END X-----", ["X"])).toThrow("PEM END line for X has no BEGIN line");
    expect(() => pemBlocks("-----BEGIN X-----\n<not base64>\n-----END X-----", ["X"])).toThrow("PEM block X is not valid base64");
  });

  it("stops at the first BEGIN left open instead of searching the rest of the text for its END", () => {
    // 128 KB of BEGIN lines: a lazy-match regular expression rescanned the rest of the text from each one
    const hostile = "-----BEGIN A-----".repeat(7_700);
    expect(csrError(hostile)).toBe("the CSR's PEM block A has no END line before the next BEGIN");
  });

  it("reads hostile text in time proportional to its length", () => {
    // Labels one character longer than a label may be: not markers, so the whole text is
    // scanned (the worst case for a one-pass scanner); a backtracking expression with an
    // unbounded label took each one for a BEGIN and searched everything after it for an END.
    const hostile = (bytes: number) => `-----BEGIN ${"A".repeat(65)}-----`.repeat(Math.ceil(bytes / 81));
    const fastest = (text: string) => {
      let best = Infinity;
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        expect(pemBlocks(text, ["CERTIFICATE REQUEST"])).toEqual([]);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    const small = hostile(64 * 1024);
    const large = hostile(512 * 1024); // 8 times as much
    fastest(small); // warm up the JIT
    // A complexity check, not a deadline: linear work grows 8-fold, quadratic 64-fold.
    // The bound is generous so that a busy machine cannot fail a linear scanner.
    const growth = fastest(large) / Math.max(fastest(small), 0.05);
    expect(growth).toBeLessThan(24);
  });
});
