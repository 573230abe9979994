import { describe, expect, it } from "vitest";
import { AUDIT_TEXT_MAX_BYTES, boundAuditEntry, boundAuditText } from "./audit.ts";

describe("boundAuditEntry", () => {
  it("keeps short text as it is and cuts long text to the limit on a character boundary", () => {
    expect(boundAuditText("certificate.revoke")).toBe("certificate.revoke");
    const cut = boundAuditText("é".repeat(10_000));
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(AUDIT_TEXT_MAX_BYTES);
    expect(cut).toMatch(/^é+ …\(20000 bytes, truncated\)$/);
  });

  it("bounds every string, list and nesting level of an entry", () => {
    const huge = "x".repeat(16 * 1024);
    const entry = boundAuditEntry({
      actor: "admin:root",
      action: "revokeCertificate",
      target: huge,
      details: { reason: huge, [huge]: 1, names: Array.from({ length: 1000 }, () => huge), deep: { a: { b: { c: { d: huge } } } } },
    });
    expect(Buffer.byteLength(JSON.stringify(entry))).toBeLessThan(5 * 1024);
    expect(entry.target).toMatch(/truncated\)$/);
    expect(entry.details).toEqual({ truncated: expect.stringMatching(/^\{"reason":"x+ …\(\d+ bytes, truncated\)$/) });
  });

  it("keeps modest details whole, with long lists cut and deep nesting marked", () => {
    const entry = boundAuditEntry({ actor: "a", action: "b", details: { names: Array.from({ length: 100 }, (_, i) => `DNS:n${i}.example`), deep: { a: { b: { c: { d: "x" } } } } } });
    expect((entry.details!.names as string[]).at(-1)).toBe("…(68 more)");
    expect(JSON.stringify(entry.details!.deep)).toContain("nested too deep");
  });
});
