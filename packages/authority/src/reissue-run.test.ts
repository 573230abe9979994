// RecordedReissue against the real PostgreSQL that scripts/with-postgres.sh starts: the
// claim keeps a second process out, the run's outcome lands in the inventory whichever
// process reads it, a dead owner's run reads as stalled, and an owner that lost its run
// says so. The certificates are ones the pipeline refuses before it reaches the token (the
// provisioner that enrolled them is gone), so no token is needed; successful re-issues are covered end to end in
// test/e2e/api-workers-reissue.test.ts and console-api.test.ts.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CertificateRecord, Inventory } from "@pki/db";
import { throwawayInventory } from "@pki/db/testing";
import type { Config } from "@pki/config";
import type { Authority } from "./authority.ts";
import type { Clock } from "./clock.ts";
import { REISSUE_PROGRESS_WRITE_MS, REISSUE_STALE_MS, RecordedReissue, reissueStatus } from "./reissue-run.ts";

let database: Awaited<ReturnType<typeof throwawayInventory>>;
let inventory: Inventory;
let deps: { authority: Authority; inventory: Inventory; config: Config };
let issuerCount = 0;

const clockAt = (date: Date): Clock => ({ now: () => date });
const realClock: Clock = { now: () => new Date() };
const removedProvisioner = randomUUID();
const refused = (serial: string) => ({ serial, profile: "mtls", provisionerId: removedProvisioner, issuerId: "int-0" }) as CertificateRecord;

async function newIssuer(): Promise<string> {
  const id = `int-${++issuerCount}`;
  await inventory.sql.query(
    `INSERT INTO issuers (id, role, status, subject, serial, key_uri, key_algorithm, not_before, not_after, certificate_der)
     VALUES ($1, 'intermediate', 'retired', 'CN=test', $1, 'pkcs11:object=x', 'ecdsa-p256', now(), now() + interval '1 day', '\\x00')`,
    [id],
  );
  return id;
}

beforeAll(async () => {
  database = await throwawayInventory(process.env.PKI_TEST_DATABASE_URL, "reissue_run");
  inventory = database.inventory;
  // never reached: each record is refused on its provisioner before anything is issued
  deps = { authority: {} as Authority, inventory, config: {} as Config };
}, 120_000);

afterAll(async () => {
  await database?.close();
});

describe("RecordedReissue", () => {
  it("keeps a second claim out while it runs, records the outcome, then lets the next run start", async () => {
    const issuer = await newIssuer();
    const errors: unknown[] = [];
    const run = await RecordedReissue.claim(inventory, realClock, issuer, "admin:first", (e) => errors.push(e));
    expect(run).toBeDefined();
    expect(await RecordedReissue.claim(inventory, realClock, issuer, "admin:second", (e) => errors.push(e))).toBeUndefined();
    const running = reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date());
    expect(running).toMatchObject({ done: false, stalled: false, actor: "admin:first", finishedAt: null });

    const result = await run!.run(deps, ["0a", "0b", "0c"].map(refused));
    expect(result.failedCount).toBe(3);
    const finished = reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date());
    expect(finished).toMatchObject({ total: 3, reissued: 0, failedCount: 3, done: true, stalled: false, error: null, finishedAt: expect.any(Date) });
    expect(finished.failed.map((f) => f.serial).sort()).toEqual(["0a", "0b", "0c"]);
    expect(finished.failed[0]!.error).toMatch(/certificate 0a has been removed; its certificates cannot renew/);
    expect(errors).toEqual([]);

    const next = await RecordedReissue.claim(inventory, realClock, issuer, "admin:second", (e) => errors.push(e));
    expect(next).toBeDefined();
    await next!.run(deps, []);
    expect(reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date())).toMatchObject({ total: 0, failedCount: 0, failed: [], done: true, actor: "admin:second" });
  });

  it("writes progress at a bounded rate, not once per certificate", async () => {
    // Every write to the table, counted by the database itself.
    await inventory.sql.exec(`CREATE TABLE IF NOT EXISTS reissue_writes (issuer_id text);
      CREATE OR REPLACE FUNCTION count_reissue_write() RETURNS trigger AS $$ BEGIN INSERT INTO reissue_writes VALUES (NEW.issuer_id); RETURN NEW; END $$ LANGUAGE plpgsql;
      CREATE OR REPLACE TRIGGER reissue_writes AFTER UPDATE ON reissue_runs FOR EACH ROW EXECUTE FUNCTION count_reissue_write();`);
    const issuer = await newIssuer();
    const records = Array.from({ length: 400 }, (_, i) => refused(i.toString(16).padStart(4, "0")));
    const run = await RecordedReissue.claim(inventory, realClock, issuer, "admin:a", () => {});
    const started = Date.now();
    const result = await run!.run(deps, records);
    const elapsed = Date.now() - started;
    expect(result.failedCount).toBe(records.length);
    const writes = (await inventory.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM reissue_writes WHERE issuer_id = $1`, [issuer]))[0]!.n;
    // one per REISSUE_PROGRESS_WRITE_MS at most, plus the final one
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(Math.ceil(elapsed / REISSUE_PROGRESS_WRITE_MS) + 1);
    expect(writes).toBeLessThan(records.length);
    expect(await inventory.reissueRuns.get(issuer)).toMatchObject({ total: 400, failedCount: 400, finishedAt: expect.any(Date) });
  });

  it("records why a run that never started ended", async () => {
    const issuer = await newIssuer();
    const run = await RecordedReissue.claim(inventory, realClock, issuer, "admin:a", () => {});
    await run!.finishEarly("the root PIN is not available here");
    expect(reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date())).toMatchObject({ done: true, error: "the root PIN is not available here", total: 0 });
  });

  it("reads a run whose process stopped writing as stalled, lets another take it over, and the first owner hears it lost the run", async () => {
    const issuer = await newIssuer();
    const longAgo = new Date(Date.now() - REISSUE_STALE_MS - 1000);
    const deadErrors: unknown[] = [];
    // A process whose last write is older than REISSUE_STALE_MS, as a dead one's would be.
    const dead = await RecordedReissue.claim(inventory, clockAt(longAgo), issuer, "admin:dead", (e) => deadErrors.push(e));
    expect(reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date())).toMatchObject({ done: false, stalled: true });

    const rescuer = await RecordedReissue.claim(inventory, realClock, issuer, "admin:rescuer", () => {});
    expect(rescuer).toBeDefined();
    expect(reissueStatus((await inventory.reissueRuns.get(issuer))!, new Date())).toMatchObject({ done: false, stalled: false, actor: "admin:rescuer" });

    await dead!.run(deps, [refused("0d")]);
    expect(deadErrors.map((e) => (e as Error).message)).toEqual([expect.stringMatching(/taken over by another process/)]);
    // the dead owner's outcome did not land on the rescuer's run
    expect(await inventory.reissueRuns.get(issuer)).toMatchObject({ runId: rescuer!.runId, failedCount: 0, finishedAt: null });
    await rescuer!.run(deps, [refused("0d")]);
    expect(await inventory.reissueRuns.get(issuer)).toMatchObject({ runId: rescuer!.runId, failedCount: 1, finishedAt: expect.any(Date) });
  });
});
