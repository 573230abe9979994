import { describe, expect, it } from "vitest";
import type { CertificateRecord } from "@pki/db";
import { parseCertId, renewalWindow } from "./renewal-info.ts";
import { AcmeProblem } from "./problems.ts";

const aki = Buffer.from("0102030405060708090a0b0c0d0e0f1011121314", "hex");

describe("RFC 9773 CertID", () => {
  it("names the serial in the inventory's hex, without DER's sign octet", () => {
    expect(parseCertId(`${aki.toString("base64url")}.${Buffer.from("0187cafe", "hex").toString("base64url")}`)).toBe("0187cafe");
    expect(parseCertId(`${aki.toString("base64url")}.${Buffer.from("0087cafe", "hex").toString("base64url")}`)).toBe("87cafe");
  });

  it("matches the issuer's key identifier", () => {
    const id = `${aki.toString("base64url")}.AQ`;
    expect(parseCertId.matchesIssuer(id, aki)).toBe(true);
    expect(parseCertId.matchesIssuer(id, Buffer.alloc(20))).toBe(false);
  });

  it("refuses other shapes", () => {
    for (const bad of ["", "abc", "a.b.c", "a+b.cd", `${aki.toString("base64url")}.${Buffer.alloc(21, 1).toString("base64url")}`, 42]) {
      expect(() => parseCertId(bad)).toThrow(AcmeProblem);
    }
  });
});

describe("renewal window", () => {
  const record = { status: "valid", successorSerial: null, notBefore: new Date("2026-01-01T00:00:00Z"), notAfter: new Date("2026-01-31T00:00:00Z") } as CertificateRecord;
  const now = new Date("2026-01-02T00:00:00Z");

  it("starts at the CA's renewal fraction and ends halfway to expiry", () => {
    const w = renewalWindow(record, { issuerRevoked: false, renewAtFraction: 2 / 3, now });
    expect(w.start.toISOString()).toBe("2026-01-21T00:00:00.000Z");
    expect(w.end.toISOString()).toBe("2026-01-26T00:00:00.000Z");
  });

  it("is already over (renew now) when the certificate or its issuer is revoked, or the certificate was re-issued", () => {
    for (const w of [
      renewalWindow({ ...record, status: "revoked" }, { issuerRevoked: false, renewAtFraction: 2 / 3, now }),
      renewalWindow(record, { issuerRevoked: true, renewAtFraction: 2 / 3, now }),
      renewalWindow({ ...record, successorSerial: "01ab" }, { issuerRevoked: false, renewAtFraction: 2 / 3, now }),
    ]) {
      expect(w.end.getTime()).toBe(now.getTime());
      expect(w.start.getTime()).toBeLessThan(now.getTime());
    }
  });
});
