// The CA's scheduled jobs and their lease-coordinated runner: what the scheduler app runs
// on its schedules, and what the API and the CLI run once or report on.
export { Scheduler, createScheduler, schedulerStatus, type SchedulerOptions, type JobRunResult, type JobStatus } from "./scheduler.ts";
export { builtInJobs, crossedThresholds, PartialFailure, type JobContext, type JobCounts, type JobDefinition } from "./jobs.ts";
export { nextFireAfter, assertCron } from "./cron.ts";
export { WebhookSender, retryDelaySeconds } from "./webhook.ts";
