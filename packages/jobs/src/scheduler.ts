// The scheduler: node-cron ticks, PostgreSQL decides. Each job's next due time and lease
// live in scheduler_jobs; a tick (or start-up) runs a job only if it is due and this
// replica wins its lease, so any number of replicas run each due job once, and a job that
// was due while every replica was down runs at the next start-up.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import cron, { type ScheduledTask } from "node-cron";
import type { CaRuntime } from "@pki/authority";
import type { Inventory, JobRunRecord, SchedulerJobRecord } from "@pki/db";
import { CaError } from "@pki/x509";
import type { Logger } from "@pki/logger";
import { SCHEDULE_TIMEZONE, assertCron, nextFireAfter } from "./cron.ts";
import { type JobContext, type JobCounts, type JobDefinition, PartialFailure, builtInJobs } from "./jobs.ts";
import { jobDurationSeconds, jobLastSuccess, jobRunsTotal } from "./metrics.ts";
import { WebhookSender } from "./webhook.ts";

const MAX_RETRY_SECONDS = 3600;
/** How often due jobs are looked for besides their own ticks: failed jobs' retries and catch-up. */
const SWEEP_SCHEDULE = "* * * * *";

export interface SchedulerOptions {
  /** the CA this scheduler works for; its inventory may be replaced (a replica's own connection) */
  runtime: Pick<CaRuntime, "config" | "clock" | "inventory" | "authority" | "keyring">;
  inventory?: Inventory;
  log: Logger;
  /** extra jobs other roles register: responder or API certificate renewal, CRL refresh */
  extraJobs?: JobDefinition[];
  /** identifies this replica in leases and job runs */
  runnerId?: string;
}

export interface JobRunResult {
  job: string;
  ran: boolean;
  outcome?: "ok" | "failed";
  counts?: JobCounts;
  error?: string;
}

export class Scheduler {
  readonly runnerId: string;
  readonly jobs: Map<string, JobDefinition>;
  private readonly context: JobContext;
  private readonly tasks: ScheduledTask[] = [];
  private readonly runningHere = new Set<string>();
  private readonly registered = new Set<string>();
  private stopped = false;

  constructor(options: SchedulerOptions) {
    const { runtime } = options;
    this.runnerId = options.runnerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    const inventory = options.inventory ?? runtime.inventory;
    this.context = {
      config: runtime.config,
      clock: runtime.clock,
      inventory,
      authority: runtime.authority,
      keyring: runtime.keyring,
      log: options.log,
      webhooks: new WebhookSender(runtime.config.scheduler.webhook, inventory, runtime.clock, options.log),
    };
    this.jobs = new Map([...builtInJobs(runtime.config), ...(options.extraJobs ?? [])].map((j) => [j.name, j]));
    for (const job of this.jobs.values()) assertCron(job.schedule, `schedule of job '${job.name}'`);
  }

  /** Registers the jobs, runs whatever is overdue (catch-up), then follows the cron schedules. */
  async start(): Promise<JobRunResult[]> {
    let caughtUp: JobRunResult[] = [];
    try {
      caughtUp = await this.runDue();
    } catch (error) {
      // The database may be down at start-up: the ticks below keep trying, nothing is lost.
      this.context.log.error({ err: error }, "catch-up run at start-up failed; the cron ticks retry");
    }
    if (this.stopped) return caughtUp;
    for (const job of this.jobs.values()) {
      this.tasks.push(cron.schedule(job.schedule, () => this.tick(job.name), { name: `pki:${job.name}`, timezone: SCHEDULE_TIMEZONE, noOverlap: true }));
    }
    this.tasks.push(cron.schedule(SWEEP_SCHEDULE, () => this.tick(), { name: "pki:sweep", timezone: SCHEDULE_TIMEZONE, noOverlap: true }));
    return caughtUp;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const task of this.tasks.splice(0)) await task.destroy();
  }

  /** Runs every job that is due, one after the other. */
  async runDue(): Promise<JobRunResult[]> {
    await this.context.inventory.scheduler.register([...this.jobs.keys()], this.context.clock.now());
    const results: JobRunResult[] = [];
    for (const name of this.jobs.keys()) {
      if (this.stopped) break;
      results.push(await this.runJob(name));
    }
    return results;
  }

  /**
   * Runs one job if it is due and its lease is free (or, with `force`, whenever its lease is
   * free: `pki scheduler run-once`). The run is recorded in job_runs either way it ends.
   */
  async runJob(name: string, { force = false } = {}): Promise<JobRunResult> {
    const job = this.jobs.get(name);
    if (!job) throw new Error(`no job '${name}'; jobs are ${[...this.jobs.keys()].join(", ")}`);
    if (this.runningHere.has(name)) return { job: name, ran: false };
    this.runningHere.add(name);
    try {
      return await this.runClaimed(job, force);
    } finally {
      this.runningHere.delete(name);
    }
  }

  /**
   * An operator's "run this job now" (`pki scheduler run-once`, the console): runs it even
   * if not due, records the run in job_runs and the audit log under the operator's name.
   * An unknown job is a bad request naming it; a job running elsewhere is a conflict.
   */
  async runNow(name: string, audit: { actor: string; sourceIp?: string | undefined }): Promise<JobRunResult> {
    if (!this.jobs.has(name)) throw new CaError("bad_request", `no job '${name.slice(0, 80)}'; jobs are ${[...this.jobs.keys()].join(", ")}`);
    const result = await this.runJob(name, { force: true });
    if (!result.ran) throw new CaError("conflict", `job '${name}' is running on another scheduler right now; try again when it ends`);
    await this.context.inventory.audit.record({
      actor: audit.actor,
      action: "scheduler.run",
      target: name,
      sourceIp: audit.sourceIp,
      outcome: result.outcome === "ok" ? "ok" : "error",
      details: { counts: result.counts ?? {}, ...(result.error ? { error: result.error } : {}) },
    });
    return result;
  }

  private async runClaimed(job: JobDefinition, force: boolean): Promise<JobRunResult> {
    const { inventory, clock, config, log } = this.context;
    const leaseMs = config.scheduler.leaseSeconds * 1000;
    // A job seen for the first time is due at once (first start-up, or a newly added job).
    if (!this.registered.has(job.name)) {
      await inventory.scheduler.register([job.name], clock.now());
      this.registered.add(job.name);
    }
    const claim = await inventory.scheduler.claim(job.name, this.runnerId, clock.now(), leaseMs, force);
    if (!claim) return { job: job.name, ran: false };
    // Long runs keep their lease; a crashed replica's lease simply runs out.
    const heartbeat = setInterval(
      () => {
        void inventory.scheduler.extendLease(job.name, this.runnerId, new Date(clock.now().getTime() + leaseMs)).catch(() => {});
      },
      Math.max(leaseMs / 3, 1000),
    );
    heartbeat.unref();
    const endTimer = jobDurationSeconds.startTimer({ job: job.name });
    let counts: JobCounts = {};
    let error: string | undefined;
    try {
      counts = await job.run(this.context);
    } catch (e) {
      error = (e as Error).message || String(e);
      if (e instanceof PartialFailure) counts = e.counts;
    } finally {
      clearInterval(heartbeat);
      endTimer();
    }
    const outcome = error === undefined ? "ok" : "failed";
    const now = clock.now();
    const nextDueAt =
      outcome === "ok" ? nextFireAfter(job.schedule, now) : new Date(now.getTime() + Math.min(config.scheduler.retrySeconds * 2 ** claim.consecutiveFailures, MAX_RETRY_SECONDS) * 1000);
    jobRunsTotal.inc({ job: job.name, outcome });
    if (outcome === "ok") jobLastSuccess.set({ job: job.name }, now.getTime() / 1000);
    if (outcome === "ok") log.info({ job: job.name, counts, nextDueAt }, "job done");
    else log.error({ job: job.name, counts, error, retryAt: nextDueAt }, "job failed; it will be retried");
    // If this write fails (database gone), the lease runs out and the job is due again: retried.
    await inventory.scheduler.finish(job.name, this.runnerId, claim.runId, outcome, now, nextDueAt, counts, error);
    return { job: job.name, ran: true, outcome, counts, ...(error !== undefined ? { error } : {}) };
  }

  private tick(only?: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const work = only ? this.runJob(only).then(() => undefined) : this.runDue().then(() => undefined);
    return work.catch((error: Error) => this.context.log.error({ err: error, job: only ?? "*" }, "scheduler tick failed (database or token unavailable?); the job stays due and is retried"));
  }
}

export interface JobStatus extends Omit<SchedulerJobRecord, "nextDueAt"> {
  /** null for a job no scheduler has registered yet (it runs at the first scheduler's start) */
  nextDueAt: Date | null;
  /** the latest run of this job, finished or running */
  lastRun: JobRunRecord | undefined;
}

/**
 * What `pki scheduler status` and the console show: every job this scheduler knows with
 * its next due time, lease, failure streak and latest run, then the latest runs of all jobs.
 * A job no scheduler has registered yet is listed with no due time.
 */
export async function schedulerStatus(inventory: Inventory, jobNames: Iterable<string>, recentRuns: number): Promise<{ jobs: JobStatus[]; runs: JobRunRecord[] }> {
  const stored = new Map((await inventory.scheduler.jobs()).map((j) => [j.job, j]));
  const names = [...new Set([...jobNames, ...stored.keys()])].sort();
  const jobs: JobStatus[] = [];
  for (const job of names) {
    const record = stored.get(job) ?? { job, nextDueAt: null, leaseHolder: null, leaseUntil: null, consecutiveFailures: 0 };
    const [lastRun] = await inventory.scheduler.runs(job, 1);
    jobs.push({ ...record, lastRun });
  }
  return { jobs, runs: await inventory.scheduler.runs(undefined, recentRuns) };
}

/** The factory the all-in-one server and `apps/scheduler` use. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  return new Scheduler(options);
}
