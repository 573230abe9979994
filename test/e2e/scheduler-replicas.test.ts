// Several schedulers against one PostgreSQL: each due job runs on exactly one of them,
// a crashed replica's job is taken over when its lease runs out, a job missed while all
// were down runs at the next start-up, and a failing job is retried without losing work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Authority, CaEvents, openInventory } from "@pki/authority";
import { parseCsr } from "@pki/x509";
import type { Inventory } from "@pki/db";
import { createLogger } from "@pki/logger";
import { createScheduler, type JobRunResult, type Scheduler } from "@pki/scheduler";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr } from "../support/tools.ts";
import { DAY, HOUR, TravelClock, startWebhookReceiver, type WebhookReceiver } from "../support/scheduler-kit.ts";

const quiet = createLogger("silent");

describe("scheduler replicas on one PostgreSQL", () => {
  const clock = new TravelClock(new Date("2026-11-23T12:00:00Z"));
  const t0 = clock.now().getTime();
  let ca: TestCa;
  let receiver: WebhookReceiver;
  const inventories: Inventory[] = [];
  const schedulers: Scheduler[] = [];

  /** A replica: its own database connection pool and runner id, sharing the token keyring. */
  const replica = async (name: string, extraJobs: Parameters<typeof createScheduler>[0]["extraJobs"] = []) => {
    const config = ca.config();
    const inventory = await openInventory(config, "server");
    inventories.push(inventory);
    const authority = new Authority(inventory, ca.runtime.keyring, config, clock, new CaEvents());
    const scheduler = createScheduler({ runtime: { config, clock, inventory, authority, keyring: ca.runtime.keyring }, log: quiet, runnerId: name, extraJobs });
    schedulers.push(scheduler);
    return { scheduler, inventory };
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    ca = await startTestCa({ clock, env: { PKI_WEBHOOK_URL: receiver.url, PKI_KEYRING_RELOAD_SECONDS: "0" } });
  });
  afterAll(async () => {
    for (const s of schedulers) await s.stop();
    for (const i of inventories) await i.close().catch(() => {});
    await ca?.cleanup();
    await receiver?.close();
  });

  it("runs each due job once across two schedulers, renewing every certificate exactly once", async () => {
    const a = await replica("replica-a");
    const b = await replica("replica-b");
    const serials: string[] = [];
    for (let i = 0; i < 12; i++) {
      const csr = parseCsr(opensslCsr({ subject: `/CN=svc${i}.replicas.test`, sans: [`DNS:svc${i}.replicas.test`] }).csrPem);
      serials.push((await ca.runtime.authority.issue({ csr, profile: "mtls", ttlSeconds: 3 * 86400, autoRenew: true, requester: { kind: "operator", actor: "test" } })).serial);
    }
    const points = [t0, t0 + 2.1 * DAY, t0 + 2.1 * DAY + HOUR, t0 + 2.2 * DAY];
    const ran: JobRunResult[] = [];
    for (const at of points) {
      clock.set(new Date(at));
      // both replicas at once, twice: the second round finds nothing due
      for (let round = 0; round < 2; round++) {
        const [fromA, fromB] = await Promise.all([a.scheduler.runDue(), b.scheduler.runDue()]);
        ran.push(...fromA.filter((r) => r.ran), ...fromB.filter((r) => r.ran));
      }
    }
    const jobs = [...a.scheduler.jobs.keys()];
    for (const job of jobs)
      expect(
        ran.filter((r) => r.job === job),
        job,
      ).toHaveLength(points.length);
    expect(ran.every((r) => r.outcome === "ok")).toBe(true);
    const runs = await ca.inventory.scheduler.runs(undefined, 1000);
    for (const job of jobs) expect(runs.filter((r) => r.job === job)).toHaveLength(points.length);

    const successors = await ca.inventory.sql.query<{ predecessor_serial: string; n: number }>(
      `SELECT predecessor_serial, count(*)::int AS n FROM certificates WHERE predecessor_serial = ANY($1) AND status = 'valid' GROUP BY predecessor_serial`,
      [serials],
    );
    expect(successors).toHaveLength(serials.length);
    expect(successors.every((s) => s.n === 1)).toBe(true);
    const announced = receiver.received.filter((r) => r.body.event === "certificate.renewed").map((r) => r.body.data.predecessorSerial);
    expect([...announced].sort()).toEqual([...serials].sort());
  });

  it("takes over the job of a replica that died holding its lease, once the lease has run out", async () => {
    const a = await replica("replica-crashing");
    const b = await replica("replica-survivor");
    clock.set(new Date(t0 + 3 * DAY));
    // replica-crashing takes the lease and dies before finishing
    const claim = await a.inventory.scheduler.claim("expiry-alerts", "replica-crashing", clock.now(), ca.config().scheduler.leaseSeconds * 1000);
    expect(claim).toBeDefined();
    expect((await b.scheduler.runJob("expiry-alerts")).ran).toBe(false);
    clock.advance(ca.config().scheduler.leaseSeconds * 1000 + 1000);
    const takeover = await b.scheduler.runJob("expiry-alerts");
    expect(takeover).toMatchObject({ ran: true, outcome: "ok" });
    const runs = (await ca.inventory.scheduler.runs("expiry-alerts", 5)).slice(0, 2);
    expect(runs.map((r) => [r.runner, r.outcome])).toEqual([
      ["replica-survivor", "ok"],
      ["replica-crashing", "running"],
    ]);
  });

  it("runs at start-up what was due while every scheduler was down", async () => {
    clock.set(new Date(t0 + 5 * DAY));
    const { scheduler } = await replica("replica-after-outage");
    const startedWith = await scheduler.start();
    await scheduler.stop();
    expect(
      startedWith
        .filter((r) => r.ran)
        .map((r) => r.job)
        .sort(),
    ).toEqual([...scheduler.jobs.keys()].sort());
    for (const job of await ca.inventory.scheduler.jobs()) {
      if (scheduler.jobs.has(job.job)) expect(job.nextDueAt.getTime()).toBeGreaterThan(clock.now().getTime());
    }
  });

  it("retries a failing job later, with its failure recorded, and loses nothing when the database goes away", async () => {
    let calls = 0;
    const flaky = {
      name: "flaky-hook",
      schedule: "0 * * * *",
      run: async () => {
        calls++;
        if (calls === 1) throw new Error("token unavailable: CKR_DEVICE_REMOVED");
        return { done: 1 };
      },
    };
    const { scheduler } = await replica("replica-flaky", [flaky]);
    clock.set(new Date(t0 + 6 * DAY));
    expect(await scheduler.runJob("flaky-hook")).toMatchObject({ ran: true, outcome: "failed", error: expect.stringMatching(/CKR_DEVICE_REMOVED/) });
    let state = (await ca.inventory.scheduler.jobs()).find((j) => j.job === "flaky-hook")!;
    expect(state.consecutiveFailures).toBe(1);
    const retryAt = state.nextDueAt.getTime();
    expect(retryAt - clock.now().getTime()).toBe(ca.config().scheduler.retrySeconds * 1000);
    clock.set(new Date(retryAt - 1000));
    expect((await scheduler.runJob("flaky-hook")).ran).toBe(false);
    clock.set(new Date(retryAt));
    expect(await scheduler.runJob("flaky-hook")).toMatchObject({ ran: true, outcome: "ok" });
    state = (await ca.inventory.scheduler.jobs()).find((j) => j.job === "flaky-hook")!;
    expect(state.consecutiveFailures).toBe(0);

    // a replica whose database connection is gone fails its tick; the job stays due for the next one
    const broken = await replica("replica-lost-db");
    const healthy = await replica("replica-healthy");
    const csr = parseCsr(opensslCsr({ subject: "/CN=late.replicas.test" }).csrPem);
    const late = await ca.runtime.authority.issue({ csr, profile: "mtls", ttlSeconds: 3 * 86400, autoRenew: true, requester: { kind: "operator", actor: "test" } });
    clock.set(new Date(late.notBefore.getTime() + 2.5 * DAY));
    await broken.inventory.close();
    await expect(broken.scheduler.runJob("renewal")).rejects.toThrow();
    const result = await healthy.scheduler.runJob("renewal");
    expect(result).toMatchObject({ ran: true, outcome: "ok", counts: expect.objectContaining({ renewed: 1 }) });
    expect((await ca.inventory.certificates.get(late.serial))!.successorSerial).not.toBeNull();
  });
});
