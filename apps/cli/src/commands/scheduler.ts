// `pki scheduler`: run one job now, or see each job's state and the latest runs.
import type { Command } from "commander";
import { cfg, operator, withCa, withInventory } from "../context.ts";
import { positiveInt } from "../options.ts";

export function registerSchedulerCommands(program: Command): void {
  const scheduler = program.command("scheduler").description("the renewal, alert and issuer-lifecycle jobs");
  scheduler
    .command("run-once <job>")
    .description("run one job now on this machine (it still takes the job's lease, so it never overlaps a running scheduler)")
    .action(async (job: string) => {
      const { createScheduler } = await import("@pki/jobs");
      const { createLogger } = await import("@pki/logger");
      await withCa(cfg(), async (ca) => {
        const runner = createScheduler({ runtime: ca, log: createLogger(cfg().logLevel, "scheduler"), runnerId: `${operator()}:${process.pid}` });
        const result = await runner.runNow(job, { actor: operator() });
        console.log(JSON.stringify({ job, outcome: result.outcome, counts: result.counts, ...(result.error ? { error: result.error } : {}) }));
        if (result.outcome !== "ok") process.exitCode = 1;
      });
    });

  scheduler
    .command("status")
    .description("each job's next due time, lease, failures and last run, then the latest runs")
    .option("--runs <n>", "how many recent runs to show", positiveInt("--runs"), 20)
    .action(async (opts: { runs: number }) => {
      const { builtInJobs, schedulerStatus } = await import("@pki/jobs");
      await withInventory(cfg(), async (inventory) => {
        const status = await schedulerStatus(
          inventory,
          builtInJobs(cfg()).map((j) => j.name),
          opts.runs,
        );
        for (const j of status.jobs) {
          console.log(
            [
              j.job.padEnd(17),
              j.nextDueAt ? `next ${j.nextDueAt.toISOString()}` : "never registered",
              j.leaseHolder ? `running on ${j.leaseHolder} until ${j.leaseUntil?.toISOString()}` : "idle",
              j.lastRun ? `last ${j.lastRun.outcome} ${j.lastRun.startedAt.toISOString()}` : "never run",
              j.consecutiveFailures ? `${j.consecutiveFailures} failure(s) in a row` : "",
            ].join("  "),
          );
        }
        for (const r of status.runs) {
          console.log([r.startedAt.toISOString(), r.job.padEnd(17), r.outcome.padEnd(7), r.runner, JSON.stringify(r.counts ?? {}), r.error ?? ""].join("  "));
        }
      });
    });
}
