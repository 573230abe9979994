// The re-issue run store against the real PostgreSQL that scripts/with-postgres.sh starts,
// on a fresh database migrated the way `pki migrate` does it: one run per issuer whoever
// claims it, abandoned runs taken over, only the owner writes, failures kept bounded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_TEXT_MAX_BYTES } from "./audit.ts";
import { type Inventory, REISSUE_FAILURES_KEPT, isAbandonedReissue } from "../index.ts";
import { throwawayInventory } from "../testing.ts";

const STALE_MS = 60_000;
let database: Awaited<ReturnType<typeof throwawayInventory>>;
let inventory: Inventory;
let issuerCount = 0;

/** An intermediate row for the runs to hang on (the table references issuers). */
async function newIssuer(): Promise<string> {
  const id = `int-${++issuerCount}`;
  await inventory.sql.query(
    `INSERT INTO issuers (id, role, status, subject, serial, key_uri, key_algorithm, not_before, not_after, certificate_der)
     VALUES ($1, 'intermediate', 'active', 'CN=test', $1, 'pkcs11:object=x', 'ecdsa-p256', now(), now() + interval '1 day', '\\x00')`,
    [id],
  );
  return id;
}

const at = (seconds: number) => new Date(Date.UTC(2026, 11, 5, 8, 0, seconds));
const noProgress = { total: 0, reissued: 0, failedCount: 0, newFailures: [] };

beforeAll(async () => {
  database = await throwawayInventory(process.env.PKI_TEST_DATABASE_URL, "reissue_runs");
  inventory = database.inventory;
}, 120_000);

afterAll(async () => {
  await database?.close();
});

describe("ReissueRunStore", () => {
  it("lets exactly one of many concurrent claims start the issuer's run", async () => {
    const issuer = await newIssuer();
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => inventory.reissueRuns.claim(issuer, `run-${i}`, "admin:test", at(0), STALE_MS)));
    const won = claims.filter((c) => c !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ issuerId: issuer, actor: "admin:test", total: 0, reissued: 0, failedCount: 0, failed: [], error: null, startedAt: at(0), updatedAt: at(0), finishedAt: null });
    expect((await inventory.reissueRuns.get(issuer))?.runId).toBe(won[0]!.runId);
    // still running, heartbeat fresh: a later claim waits its turn too
    expect(await inventory.reissueRuns.claim(issuer, "late", "admin:test", at(30), STALE_MS)).toBeUndefined();
  });

  it("moves progress only for the owner, appends failures, and keeps the row once finished", async () => {
    const issuer = await newIssuer();
    await inventory.reissueRuns.claim(issuer, "owner", "admin:a", at(0), STALE_MS);
    expect(await inventory.reissueRuns.progress(issuer, "owner", { total: 5, reissued: 2, failedCount: 1, newFailures: [{ serial: "01", error: "first" }] }, at(1))).toBe(true);
    expect(await inventory.reissueRuns.progress(issuer, "intruder", { total: 5, reissued: 5, failedCount: 0, newFailures: [] }, at(2))).toBe(false);
    expect(await inventory.reissueRuns.progress(issuer, "owner", { total: 5, reissued: 3, failedCount: 1, newFailures: [] }, at(2))).toBe(true);
    expect(await inventory.reissueRuns.get(issuer)).toMatchObject({ total: 5, reissued: 3, failedCount: 1, failed: [{ serial: "01", error: "first" }], updatedAt: at(2), finishedAt: null });
    expect(await inventory.reissueRuns.finish(issuer, "owner", { total: 5, reissued: 3, failedCount: 2, newFailures: [{ serial: "02", error: "second" }] }, at(3))).toBe(true);
    const finished = await inventory.reissueRuns.get(issuer);
    expect(finished).toMatchObject({
      reissued: 3,
      failedCount: 2,
      failed: [
        { serial: "01", error: "first" },
        { serial: "02", error: "second" },
      ],
      finishedAt: at(3),
      error: null,
    });
    // a finished run takes no more writes, even from its owner
    expect(await inventory.reissueRuns.progress(issuer, "owner", noProgress, at(4))).toBe(false);
    expect(await inventory.reissueRuns.finish(issuer, "owner", noProgress, at(4), "late")).toBe(false);
    // and a new run replaces it at once, starting from nothing
    expect(await inventory.reissueRuns.claim(issuer, "next", "admin:b", at(5), STALE_MS)).toMatchObject({ runId: "next", actor: "admin:b", total: 0, failed: [], finishedAt: null, startedAt: at(5) });
  });

  it("treats a run whose owner stopped writing as abandoned: reported so, and taken over", async () => {
    const issuer = await newIssuer();
    await inventory.reissueRuns.claim(issuer, "dead", "admin:a", at(0), STALE_MS);
    await inventory.reissueRuns.progress(issuer, "dead", { total: 10, reissued: 4, failedCount: 0, newFailures: [] }, at(10));
    const run = (await inventory.reissueRuns.get(issuer))!;
    expect(isAbandonedReissue(run, at(69), STALE_MS)).toBe(false);
    expect(isAbandonedReissue(run, at(70), STALE_MS)).toBe(true);
    expect(await inventory.reissueRuns.claim(issuer, "rescuer", "admin:b", at(69), STALE_MS)).toBeUndefined();
    expect(await inventory.reissueRuns.claim(issuer, "rescuer", "admin:b", at(70), STALE_MS)).toMatchObject({ runId: "rescuer", reissued: 0, total: 0 });
    // the old owner, should it wake up, finds it no longer owns the run
    expect(await inventory.reissueRuns.progress(issuer, "dead", { total: 10, reissued: 5, failedCount: 0, newFailures: [] }, at(71))).toBe(false);
    expect(await inventory.reissueRuns.finish(issuer, "rescuer", { total: 6, reissued: 6, failedCount: 0, newFailures: [] }, at(72))).toBe(true);
    expect(isAbandonedReissue((await inventory.reissueRuns.get(issuer))!, at(1000), STALE_MS)).toBe(false);
  });

  it("keeps at most REISSUE_FAILURES_KEPT failures, in order, each bounded in bytes", async () => {
    const issuer = await newIssuer();
    await inventory.reissueRuns.claim(issuer, "owner", "admin:a", at(0), STALE_MS);
    const failures = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ serial: `s${from + i}`, error: `${"é".repeat(1000)} ${from + i}` }));
    await inventory.reissueRuns.progress(issuer, "owner", { total: 2000, reissued: 0, failedCount: 600, newFailures: failures(0, 600) }, at(1));
    await inventory.reissueRuns.progress(issuer, "owner", { total: 2000, reissued: 0, failedCount: 1200, newFailures: failures(600, 600) }, at(2));
    await inventory.reissueRuns.finish(issuer, "owner", { total: 2000, reissued: 0, failedCount: 1300, newFailures: failures(1200, 100) }, at(3), "x".repeat(10_000));
    const run = (await inventory.reissueRuns.get(issuer))!;
    expect(run.failedCount).toBe(1300);
    expect(run.failed).toHaveLength(REISSUE_FAILURES_KEPT);
    expect(run.failed.map((f) => f.serial)).toEqual(Array.from({ length: REISSUE_FAILURES_KEPT }, (_, i) => `s${i}`));
    expect(Math.max(...run.failed.map((f) => Buffer.byteLength(f.error)))).toBeLessThanOrEqual(AUDIT_TEXT_MAX_BYTES);
    expect(run.failed[0]!.error).toMatch(/truncated\)$/);
    expect(Buffer.byteLength(run.error!)).toBeLessThanOrEqual(AUDIT_TEXT_MAX_BYTES);
  });

  it("answers undefined for an issuer that never had a re-issue", async () => {
    expect(await inventory.reissueRuns.get(await newIssuer())).toBeUndefined();
  });
});
