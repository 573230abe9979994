// The scheduler on its own (production: one or more replicas next to the API and
// responders). Replicas coordinate through PostgreSQL leases; run as many as you like.
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";
import { StartupCheckError, openCa, systemClock } from "@pki/authority";
import { closeGracefully, runtimeReadiness, startOpsListener } from "@pki/http-kit";
import { createScheduler } from "@pki/jobs";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "scheduler");
  // Handlers go in first: a signal during start-up (catch-up jobs can take a while) still
  // shuts down cleanly, closing whatever has been opened so far, in reverse order.
  const opened: Array<() => Promise<unknown>> = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "scheduler stopping");
    for (const close of opened.reverse()) await close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  const runtime = await openCa(config, systemClock);
  opened.push(() => runtime.close());
  const scheduler = createScheduler({ runtime, log });
  opened.push(() => scheduler.stop());
  const caughtUp = await scheduler.start();
  // /healthz, /readyz and /metrics for the orchestrator and Prometheus.
  const ops = await startOpsListener(config.http, runtimeReadiness(runtime));
  opened.push(() => closeGracefully(ops));
  log.info(
    { runner: scheduler.runnerId, jobs: [...scheduler.jobs.values()].map((j) => `${j.name} (${j.schedule})`), ranAtStartup: caughtUp.filter((r) => r.ran).map((r) => r.job) },
    "scheduler started",
  );
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : error instanceof StartupCheckError ? `refusing to start: ${error.message}` : (error as Error).message;
  console.error(`pki-scheduler: ${message}`);
  process.exit(1);
});
