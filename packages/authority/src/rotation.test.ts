// reissueCertificates' bookkeeping, with certificates the pipeline refuses before it
// reaches the token (the provisioner that enrolled them is gone): every failure counted, only the first few kept,
// progress after each. Successful re-issues through the token are covered end to end in
// test/e2e/rotation-emergency.test.ts and revocation-intermediate-ocsp.test.ts. Below, a
// run's lookups of whom it re-issues for, with an authority that only records requests.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CertificateRecord, Inventory } from "@pki/db";
import type { Config } from "@pki/config";
import type { Authority, RenewRequest } from "./authority.ts";
import { reissueCertificates } from "./rotation.ts";

const record = (serial: string) => ({ serial, profile: "mtls", provisionerId: "p-gone", issuerId: "issuer-1" }) as CertificateRecord;
// the authority is never reached: each record is refused on its provisioner, which the inventory no longer has
const deps = { authority: {} as Authority, inventory: { provisioners: { get: async () => undefined } } as unknown as Inventory, config: {} as Config };

describe("reissueCertificates", () => {
  it("counts every failure, keeps the first maxFailuresKept, and reports progress after each certificate", async () => {
    const records = Array.from({ length: 7 }, (_, i) => record(`0${i}`));
    const seen: number[] = [];
    const result = await reissueCertificates(deps, records, "unit", { concurrency: 3, maxFailuresKept: 2, onProgress: (r) => seen.push(r.failedCount) });
    expect(result.reissued).toEqual([]);
    expect(result.failedCount).toBe(7);
    expect(result.failed).toHaveLength(2);
    expect(result.failed[0]!.error).toMatch(/provisioner 'p-gone' that enrolled certificate 00 has been removed/);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("tries each certificate exactly once with more workers than certificates", async () => {
    const records = [record("aa"), record("bb")];
    const result = await reissueCertificates(deps, records, "unit", { concurrency: 32 });
    expect(result.failed.map((f) => f.serial).sort()).toEqual(["aa", "bb"]);
    expect(result.failedCount).toBe(2);
  });

  it("starts no further certificate once its signal aborts", async () => {
    const records = Array.from({ length: 10 }, (_, i) => record(`1${i}`));
    const stop = new AbortController();
    const result = await reissueCertificates(deps, records, "unit", {
      concurrency: 1,
      signal: stop.signal,
      onProgress: (r) => {
        if (r.failedCount === 3) stop.abort();
      },
    });
    expect(result.failed.map((f) => f.serial)).toEqual(["10", "11", "12"]);
  });
});

describe("reissueCertificates' requester lookups", () => {
  const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
  const issued = (serial: string, provisionerId: string | null) =>
    ({
      serial,
      profile: "mtls",
      subject: "CN=svc.internal",
      sans: ["DNS:svc.internal"],
      publicKeySpki: spki,
      notBefore: new Date("2026-01-01T00:00:00Z"),
      notAfter: new Date("2026-01-02T00:00:00Z"),
      autoRenew: false,
      issuerId: "issuer-1",
      provisionerId,
    }) as unknown as CertificateRecord;
  // The pipeline itself is covered end to end; here it only records whom each certificate was issued for.
  const recordingAuthority = (requests: RenewRequest[]) =>
    ({
      renew: async (request: RenewRequest) => {
        requests.push(request);
        return { serial: `new-${request.predecessor.serial}` };
      },
    }) as unknown as Authority;
  const config = { ca: { backdateSeconds: 60 } } as Config;

  it("looks an issuer up once for a run of its certificates, not once per certificate", async () => {
    const requests: RenewRequest[] = [];
    let lookups = 0;
    const inventory = { issuers: { get: async () => (lookups++, { hierarchy: "payments" }) } } as unknown as Inventory;
    const records = Array.from({ length: 50 }, (_, i) => issued(`a${i}`, null));
    const result = await reissueCertificates({ authority: recordingAuthority(requests), inventory, config }, records, "unit");
    expect(result.failedCount).toBe(0);
    expect(result.reissued).toHaveLength(50);
    expect(lookups).toBe(1);
    expect(requests.map((r) => r.requester)).toEqual(records.map(() => ({ kind: "operator", actor: "unit", hierarchy: "payments", sourceIp: undefined })));
  });

  it("does not share a refusal: each certificate of a disabled provisioner is refused under its own serial", async () => {
    const requests: RenewRequest[] = [];
    const inventory = { provisioners: { get: async () => ({ id: "p-1", name: "web", disabled: true, deletedAt: null }) } } as unknown as Inventory;
    const records = Array.from({ length: 5 }, (_, i) => issued(`b${i}`, "p-1"));
    const result = await reissueCertificates({ authority: recordingAuthority(requests), inventory, config }, records, "unit");
    expect(requests).toEqual([]);
    expect(result.failedCount).toBe(5);
    for (const failure of result.failed) expect(failure.error).toContain(`enrolled certificate ${failure.serial} has been disabled`);
  });
});
