// reissueCertificates' bookkeeping, with certificates the pipeline refuses before it
// reaches the token (an unknown profile): every failure counted, only the first few kept,
// progress after each. Successful re-issues through the token are covered end to end in
// test/e2e/rotation-emergency.test.ts and revocation-intermediate-ocsp.test.ts.
import { describe, expect, it } from "vitest";
import type { CertificateRecord, Inventory } from "@pki/db";
import type { Config } from "@pki/config";
import type { Authority } from "./authority.ts";
import { reissueCertificates } from "./rotation.ts";

const record = (serial: string) => ({ serial, profile: "no-such-profile" }) as CertificateRecord;
// never reached: each record fails on its profile before anything is issued or read
const deps = { authority: {} as Authority, inventory: {} as Inventory, config: {} as Config };

describe("reissueCertificates", () => {
  it("counts every failure, keeps the first maxFailuresKept, and reports progress after each certificate", async () => {
    const records = Array.from({ length: 7 }, (_, i) => record(`0${i}`));
    const seen: number[] = [];
    const result = await reissueCertificates(deps, records, "unit", { concurrency: 3, maxFailuresKept: 2, onProgress: (r) => seen.push(r.failedCount) });
    expect(result.reissued).toEqual([]);
    expect(result.failedCount).toBe(7);
    expect(result.failed).toHaveLength(2);
    expect(result.failed[0]!.error).toMatch(/unknown profile 'no-such-profile'/);
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
