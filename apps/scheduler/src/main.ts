// The scheduler on its own (production: one or more replicas next to the API and
// responders). Replicas coordinate through PostgreSQL leases; run as many as you like.
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";
import { StartupCheckError, openCa, systemClock } from "@pki/ca-core";
import { closeGracefully, runtimeReadiness, startOpsListener } from "@pki/http-kit";
import { createScheduler } from "./scheduler.ts";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "scheduler");
  const runtime = await openCa(config, systemClock);
  const scheduler = createScheduler({ runtime, log });
  const caughtUp = await scheduler.start();
  // /healthz, /readyz and /metrics for the orchestrator and Prometheus.
  const ops = await startOpsListener(config.http, runtimeReadiness(runtime));
  log.info({ runner: scheduler.runnerId, jobs: [...scheduler.jobs.values()].map((j) => `${j.name} (${j.schedule})`), ranAtStartup: caughtUp.filter((r) => r.ran).map((r) => r.job) }, "scheduler started");
  const stop = async (signal: string) => {
    log.info({ signal }, "scheduler stopping");
    await scheduler.stop();
    await closeGracefully(ops);
    await runtime.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  const message =
    error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : error instanceof StartupCheckError ? `refusing to start: ${error.message}` : (error as Error).message;
  console.error(`pki-scheduler: ${message}`);
  process.exit(1);
});
