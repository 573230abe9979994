// Two real scheduler processes (apps/scheduler/src/main.ts) against one PostgreSQL
// database: started together, they run each due job once between them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr } from "@pki/x509";
import { REPO_ROOT, startTestCa, type TestCa } from "../support/harness.ts";
import { freePort, opensslCsr, spawnApp, stopSpawnedApps } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

describe("scheduler processes", () => {
  let fresh: TestCa;
  beforeAll(async () => {
    fresh = await startTestCa();
  });
  afterAll(async () => {
    stopSpawnedApps(); // what a failed assertion left running
    await fresh?.cleanup();
  });

  it("two scheduler processes started together on one fresh database run each due job once, closing an intent a crash left pending", async () => {
    // What a crash between "record" and "store" leaves: a pending row with its TBS and no DER, minutes old.
    const csr = parseCsr(opensslCsr({ subject: "/CN=interrupted.example.com" }).csrPem);
    const interrupted = await fresh.runtime.authority.issue({ csr, profile: "mtls", requester: { kind: "operator", actor: "test" } });
    await fresh.inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL, created_at = now() - interval '10 minutes' WHERE serial = $1", [interrupted.serial]);
    const start = (opsPort: number) => {
      // each process has its own ops listener (/healthz, /metrics)
      const child = spawnApp("apps/scheduler/src/main.ts", {
        cwd: REPO_ROOT,
        env: childEnv({ ...fresh.env, PKI_LOG_LEVEL: "info", PKI_HTTP_PORT: String(opsPort) }),
      });
      let output = "";
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      const started = new Promise<{ runner: string; ranAtStartup: string[] }>((resolve, reject) => {
        const onData = (d: Buffer) => {
          output += d.toString();
          const line = output.split("\n").find((l) => l.includes('"msg":"scheduler started"'));
          if (line) resolve(JSON.parse(line));
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("close", () => reject(new Error(`scheduler exited early:\n${output}`)));
      });
      return { child, exited, started, metrics: () => fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text()) };
    };
    const one = start(await freePort());
    const two = start(await freePort());
    const [a, b] = await Promise.all([one.started, two.started]);
    // every job was due at start-up and between them the two processes ran each of them; a
    // job may appear twice only for two different due times (a slow start can cross a
    // minute boundary), which the check on due times below tells apart from a double run
    expect(new Set([...a.ranAtStartup, ...b.ranAtStartup])).toEqual(
      new Set(["expiry-alerts", "issuer-health", "issuer-lifecycle", "renewal", "webhook-delivery", "reconcile-intents", "clock-check", "responder-key-cleanup"]),
    );
    // the pending intent is closed as failed, audited, counted in the run and in the metrics
    expect((await fresh.inventory.certificates.get(interrupted.serial))?.status).toBe("failed");
    expect((await fresh.inventory.audit.recent(5, interrupted.serial)).map((e) => e.action)).toContain("certificate.reconcile");
    const reconciled = (await fresh.inventory.scheduler.runs("reconcile-intents", 10)).filter((r) => r.outcome === "ok");
    expect(reconciled.reduce((sum, r) => sum + (r.counts?.closed ?? 0), 0)).toBe(1);
    const metrics = await Promise.all([one.metrics(), two.metrics()]);
    const closedTotal = metrics.map((m) => Number(m.match(/^pki_reconciled_intents_total (\S+)$/m)?.[1] ?? Number.NaN));
    expect(closedTotal[0]! + closedTotal[1]!).toBe(1);
    // the clock check ran on one of them and exported the skew against the database
    const checker = a.ranAtStartup.includes("clock-check") ? metrics[0]! : metrics[1]!;
    expect(Math.abs(Number(checker.match(/^pki_clock_skew_seconds (\S+)$/m)?.[1]))).toBeLessThan(5);
    one.child.kill("SIGTERM");
    two.child.kill("SIGTERM");
    expect(await one.exited).toBe(0);
    expect(await two.exited).toBe(0);
    // and no due time was ever run twice, whatever cron ticks happened meanwhile
    const runs = await fresh.inventory.scheduler.runs(undefined, 1000);
    const slots = runs.map((r) => `${r.job}@${r.dueAt.toISOString()}`);
    expect(new Set(slots).size).toBe(slots.length);
    expect(runs.every((r) => r.runner === a.runner || r.runner === b.runner)).toBe(true);
  });
});
