// The issuing API on its own (production: several replicas against one PostgreSQL).
// The CA must have been initialised (`pki init`); this process never runs the ceremony.
// The CA's packages are imported where they are used: with workers, this process only
// forks, counts failed logins and answers /metrics, and loading them would cost ~100 MB.
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "pki-api");
  if (config.api.workers > 1) return serveFromWorkers(config, log);
  const { openCa, openInventory, systemClock } = await import("@pki/authority");
  const { runtimeReadiness, startOpsListener, closeGracefully } = await import("@pki/http-kit");
  const { startApi } = await import("./server.ts");
  const inventory = await openInventory(config, "server");
  const runtime = await openCa(config, systemClock, inventory);
  const api = await startApi(runtime, log);
  // /healthz, /readyz and /metrics for the orchestrator and Prometheus.
  const ops = await startOpsListener(config.http, runtimeReadiness(runtime));
  console.log(`issuing API:      ${api.url} (OpenAPI at ${api.url}/openapi.json)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight requests");
    await api.stop();
    await closeGracefully(ops);
    await runtime.close();
    await inventory.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** One worker per core (PKI_API_WORKERS); this process holds no database pool and no token. */
async function serveFromWorkers(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>): Promise<void> {
  const { startOpsListener, closeGracefully } = await import("@pki/http-kit/ops");
  const { startApiWorkers } = await import("./workers.ts");
  const workers = await startApiWorkers({ count: config.api.workers, authFailureLimit: config.api.authFailureLimit }, log);
  // Ready while any worker serves (no I/O here: the workers check their own database and token).
  const ops = await startOpsListener(config.http, async () => {
    const { serving, wanted } = workers.serving();
    return { ok: serving > 0, checks: { workers: `${serving} of ${wanted} serving` } };
  });
  console.log(`issuing API:      ${workers.url} (OpenAPI at ${workers.url}/openapi.json; ${config.api.workers} workers)`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: the workers finish their in-flight requests");
    await workers.stop();
    await closeGracefully(ops);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch(async (error: unknown) => {
  const { StartupCheckError } = await import("@pki/authority");
  const message = error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : error instanceof StartupCheckError ? `refusing to start: ${error.message}` : (error as Error).message;
  console.error(`pki-api: ${message}`);
  process.exit(1);
});
