// The scheduler as operators meet it: `pki scheduler run-once|status`, and apps/scheduler
// running on its own as a separate process (catch-up at start-up, clean stop on SIGTERM).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr } from "@pki/x509";
import type { Logger } from "@pki/logger";
import { registry } from "@pki/metrics";
import { createScheduler } from "@pki/scheduler";
import { REPO_ROOT, startTestCa, type TestCa } from "../support/harness.ts";
import { freePort, opensslCsr, pki, spawnApp, stopSpawnedApps } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

describe("scheduler from the command line and as its own process", () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    stopSpawnedApps(); // what a failed assertion left running
    await ca?.cleanup();
  });

  it("pki scheduler run-once runs a job and records it; unknown jobs are refused in one line", () => {
    const run = pki(["scheduler", "run-once", "issuer-health"], ca.env);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ job: "issuer-health", outcome: "ok", counts: { checked: 1, flagged: 0 } });
    const unknown = pki(["scheduler", "run-once", "reticulate-splines"], ca.env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/^pki: no job 'reticulate-splines'; jobs are renewal, expiry-alerts/);
    const status = pki(["scheduler", "status"], ca.env);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^issuer-health\s+next \S+\s+idle/m);
    expect(status.stdout).toMatch(/issuer-health\s+ok\s+cli/);
  });

  it("pki scheduler run-once reconcile-intents closes an intent a crash left pending, and only a stale one", async () => {
    const issue = (cn: string) => ca.runtime.authority.issue({ csr: parseCsr(opensslCsr({ subject: `/CN=${cn}` }).csrPem), profile: "mtls", requester: { kind: "operator", actor: "test" } });
    // a crash between "record" and "store" leaves a pending row with its TBS and no DER
    const stale = await issue("stale.reconcile.test");
    await ca.inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL, created_at = now() - interval '10 minutes' WHERE serial = $1", [stale.serial]);
    const inFlight = await issue("in-flight.reconcile.test");
    await ca.inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL WHERE serial = $1", [inFlight.serial]);
    const run = pki(["scheduler", "run-once", "reconcile-intents"], ca.env);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    // the job's warning about what it closed is a log line (JSON) before the result line
    const lines = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toEqual({ job: "reconcile-intents", outcome: "ok", counts: { closed: 1 } });
    expect(lines.find((l) => l.msg === "closed pending intents left by an interrupted issuance")).toMatchObject({ level: 40, count: 1, serials: [stale.serial] });
    expect((await ca.inventory.certificates.get(stale.serial))?.status).toBe("failed");
    expect((await ca.inventory.audit.recent(5, stale.serial)).map((e) => e.action)).toContain("certificate.reconcile");
    // an intent younger than the grace period may still be stored by its request
    expect((await ca.inventory.certificates.get(inFlight.serial))?.status).toBe("pending");
    const [recorded] = await ca.inventory.scheduler.runs("reconcile-intents", 1);
    expect(recorded).toMatchObject({ outcome: "ok", counts: { closed: 1 } });
    // the clock check runs the same way
    const clock = pki(["scheduler", "run-once", "clock-check"], ca.env);
    expect(clock.status).toBe(0);
    expect(JSON.parse(clock.stdout)).toMatchObject({ job: "clock-check", outcome: "ok", counts: { skewed: 0 } });
  });

  it("clock-check exports the skew against the database and warns beyond 5 s", async () => {
    const warnings: Array<{ fields: Record<string, unknown>; msg: string }> = [];
    const log = {
      warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }),
      info: () => {},
      error: () => {},
    } as unknown as Logger;
    const runtimeWithClock = (offsetMs: number) => ({ ...ca.runtime, clock: { now: () => new Date(Date.now() + offsetMs) } });
    const inStep = await createScheduler({ runtime: runtimeWithClock(0), log }).runJob("clock-check", { force: true });
    expect(inStep).toMatchObject({ outcome: "ok", counts: { skewed: 0 } });
    expect(Math.abs(inStep.counts!.skewMs!)).toBeLessThan(5000);
    expect(warnings).toEqual([]);
    // a machine ten minutes ahead of the database
    const ahead = await createScheduler({ runtime: runtimeWithClock(600_000), log }).runJob("clock-check", { force: true });
    expect(ahead).toMatchObject({ outcome: "ok", counts: { skewed: 1 } });
    expect(ahead.counts!.skewMs!).toBeGreaterThan(595_000);
    expect(warnings).toEqual([{ fields: { skewSeconds: expect.closeTo(600, -1) }, msg: expect.stringMatching(/differs from the database's by more than 5 s; check NTP/) }]);
    const exported = Number((await registry.getSingleMetricAsString("pki_clock_skew_seconds")).match(/^pki_clock_skew_seconds (\S+)$/m)?.[1]);
    expect(exported).toBeCloseTo(600, -1);
  });

  it("apps/scheduler runs alone: overdue jobs run at start-up, SIGTERM stops it cleanly", async () => {
    const child = spawnApp("apps/scheduler/src/main.ts", {
      cwd: REPO_ROOT,
      env: childEnv({ ...ca.env, PKI_LOG_LEVEL: "info", PKI_HTTP_PORT: String(await freePort()) }),
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    // wait for the start-up line (the process prints it after its catch-up run)
    await new Promise<void>((resolve, reject) => {
      const check = () => (output.includes('"msg":"scheduler started"') ? resolve() : undefined);
      child.stdout.on("data", check);
      child.on("close", () => reject(new Error(`scheduler exited early:\n${output}`)));
    });
    const started = JSON.parse(output.split("\n").find((l) => l.includes('"msg":"scheduler started"'))!);
    // never run before, so overdue; issuer-health ran by hand above and is due at the next full hour
    expect(started.ranAtStartup).toEqual(expect.arrayContaining(["renewal", "expiry-alerts", "issuer-lifecycle", "webhook-delivery", "responder-key-cleanup"]));
    const healthDue = (await ca.inventory.scheduler.jobs()).find((j) => j.job === "issuer-health")!;
    if (!started.ranAtStartup.includes("issuer-health")) expect(healthDue.nextDueAt.getTime()).toBeGreaterThan(Date.parse(started.time) - 1000);
    const runs = await ca.inventory.scheduler.runs(undefined, 50);
    expect(
      runs
        .filter((r) => r.runner === started.runner)
        .map((r) => r.job)
        .sort(),
    ).toEqual([...started.ranAtStartup].sort());
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
