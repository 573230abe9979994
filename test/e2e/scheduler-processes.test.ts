// Two real scheduler processes (apps/scheduler/src/main.ts) against one PostgreSQL
// database: started together, they run each due job once between them.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startTestCa, type TestCa } from "../support/harness.ts";
import { freePort } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

describe("scheduler processes", () => {
  let fresh: TestCa;
  beforeAll(async () => {
    fresh = await startTestCa();
  });
  afterAll(async () => {
    await fresh?.cleanup();
  });

  it("two scheduler processes started together on one fresh database run each due job once", async () => {
    const start = (opsPort: number) => {
      // each process has its own ops listener (/healthz, /metrics)
      const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/scheduler/src/main.ts")], {
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
      return { child, exited, started };
    };
    const one = start(await freePort());
    const two = start(await freePort());
    const [a, b] = await Promise.all([one.started, two.started]);
    // every job was due at start-up and between them the two processes ran each of them; a
    // job may appear twice only for two different due times (a slow start can cross a
    // minute boundary), which the check on due times below tells apart from a double run
    expect(new Set([...a.ranAtStartup, ...b.ranAtStartup])).toEqual(new Set(["expiry-alerts", "issuer-health", "issuer-lifecycle", "renewal", "webhook-delivery"]));
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
