import { describe, expect, it } from "vitest";
import type { CaRuntime } from "@pki/authority";
import { apiRoutes } from "./app.ts";
import { AUDITED_OPERATIONS, auditActionOf } from "./audit-actions.ts";

describe("audit actions of refusals", () => {
  it("every route of the API has an action in the audit vocabulary (area.verb), not its operationId", () => {
    // The route table is built without a CA: handlers only use it when called.
    const operations = apiRoutes({ config: { logLevel: "silent" } } as unknown as CaRuntime).map((r) => r.operationId);
    expect(operations.filter((op) => !AUDITED_OPERATIONS.has(op))).toEqual([]);
    for (const op of operations) expect(auditActionOf(op), op).toMatch(/^[a-z-]+\.[a-z.-]+$/);
  });

  it("a refusal is recorded under the action its success is", () => {
    expect(auditActionOf("issueCertificate")).toBe("certificate.issue");
    expect(auditActionOf("renewCertificate")).toBe("certificate.renew");
    expect(auditActionOf("revokeCertificate")).toBe("certificate.revoke");
    expect(auditActionOf("rotateIntermediate")).toBe("issuer.rotate.begin");
    expect(auditActionOf("createProvisioner")).toBe("provisioner.create");
  });
});
