// Which intermediates go into intermediates.pem. Writing the file and verifying with it
// through openssl after a rotation and a revocation: test/e2e/trust-files.test.ts.
import { describe, expect, it } from "vitest";
import type { IssuerRecord } from "@pki/db";
import { unexpiredIntermediates } from "./ceremony.ts";

const now = new Date("2026-12-08T00:00:00Z");
const day = 86_400_000;
const issuer = (id: string, fields: Partial<IssuerRecord>) =>
  ({ id, role: "intermediate", hierarchy: "default", status: "active", revokedAt: null, notBefore: new Date(now.getTime() - day), notAfter: new Date(now.getTime() + day), ...fields }) as IssuerRecord;

describe("unexpiredIntermediates", () => {
  it("keeps staged, active, retired and revoked intermediates until their certificate expires, newest first", () => {
    const issuers = [
      issuer("root", { role: "root", parentId: null } as Partial<IssuerRecord>),
      issuer("retired", { status: "retired", notBefore: new Date(now.getTime() - 3 * day) }),
      issuer("active", { notBefore: new Date(now.getTime() - 2 * day) }),
      issuer("staged", { status: "staged", notBefore: new Date(now.getTime() - day / 2) }),
      issuer("revoked", { status: "retired", revokedAt: new Date(now.getTime() - day), notBefore: new Date(now.getTime() - 4 * day) }),
      issuer("gone", { status: "expired", notAfter: now }),
      issuer("partners", { hierarchy: "partners" }),
    ];
    expect(unexpiredIntermediates(issuers, "default", now).map((i) => i.id)).toEqual(["staged", "active", "retired", "revoked"]);
    expect(unexpiredIntermediates(issuers, "partners", now).map((i) => i.id)).toEqual(["partners"]);
    // the same set a moment after "active" expires: the scheduler's rewrite drops it
    const later = new Date(now.getTime() + day);
    expect(unexpiredIntermediates([issuer("a", { notAfter: later }), issuer("b", { notAfter: new Date(later.getTime() + 1) })], "default", later).map((i) => i.id)).toEqual(["b"]);
  });
});
