// `npm start`: every role in one process. Initialises the data dir on first run.
import { createServer } from "node:http";
import express from "express";
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";
import { StartupCheckError, clockSkewSeconds, initCa, openCa, openInventory, reconcilePendingIntents, systemClock } from "@pki/authority";
import { migrateDatabase } from "@pki/db";
import { closeGracefully, listen, problemHandler, requestLogger, requestTimer, securityHeaders, sendProblem } from "@pki/http-kit";
import { caDocumentsRouter } from "./public.ts";
import { startApi, startApiWorkers } from "@pki/api";
import { createCrlPublisherRole } from "@pki/crl-publisher";
import { createOcspResponderRole } from "@pki/ocsp-responder";
import { assertPortsFree } from "./ports.ts";

/** How long after listening the OCSP pre-signer starts its first sweep. */
const PRESIGN_CATCH_UP_DELAY_MS = 5_000;

/** What has been started so far, closed in reverse order on SIGTERM/SIGINT. */
const started: Array<() => Promise<void> | void> = [];
let stopping = false;

async function stop(log: { info: (o: object | string, m?: string) => void }, signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down: finishing in-flight requests");
  for (const close of started.reverse()) await close();
  log.info("stopped");
  process.exit(0);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "pki");
  // Handlers go in first, so a signal during start-up still shuts down cleanly.
  process.on("SIGTERM", () => void stop(log, "SIGTERM"));
  process.on("SIGINT", () => void stop(log, "SIGINT"));

  // A first start takes a few seconds (tokens, keys, database): say each step as it happens.
  const startedAt = performance.now();
  const progress = (step: string) => console.log(`pki: [${((performance.now() - startedAt) / 1000).toFixed(1)} s] ${step}`);
  await assertPortsFree(config.http.bind, [
    { port: config.http.port, setting: "PKI_HTTP_PORT" },
    { port: config.http.apiPort, setting: "PKI_API_PORT" },
  ]);
  progress(config.databaseUrl ? "connecting to PostgreSQL (DATABASE_URL)" : `opening the embedded database in ${config.embeddedDatabaseDir}`);
  // The all-in-one server runs `pki init` at start, so it also migrates, like `pki init`:
  // it owns its database (embedded, or the PostgreSQL DATABASE_URL names for it alone).
  // The per-role processes never do; see README "Database users per role".
  if (config.databaseUrl) await migrateDatabase({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir, progress });
  const inventory = await openInventory(config, "server", progress);
  started.push(() => inventory.close());
  progress("database ready");
  const report = await initCa(config, inventory, systemClock, "server:init", "default", progress);
  const runtime = await openCa(config, systemClock, inventory);
  progress("keys checked against their certificates; starting the listeners");
  started.push(() => runtime.close());

  // Everything below needs only the runtime: start it side by side (database round trips,
  // token signatures and the API's TLS key overlap). Each role pushes its closer as it comes up.
  // Intents a crash left pending and the clock check are scheduler jobs (reconcile-intents,
  // clock-check), run wherever a scheduler runs. With this process's scheduler turned off
  // they are done once here at start-up, so a restart after a crash closes its intents even
  // if no scheduler runs anywhere; periodically only a scheduler does them.
  const startupChecks = async () => {
    if (config.scheduler.enabled) return;
    const skew = await clockSkewSeconds(inventory, systemClock);
    if (Math.abs(skew) > 5) log.warn({ skewSeconds: skew }, "the system clock differs from the database's by more than 5 s; check NTP");
    await reconcilePendingIntents(inventory, systemClock).then(
      (serials) => serials.length && log.warn({ serials }, "closed pending intents left by an interrupted issuance"),
      (error: Error) => log.error({ err: error }, "reconciliation failed; a scheduler's reconcile-intents job retries it"),
    );
  };
  // Revocation: CRLs and pre-signed OCSP signed here; the responder answers from memory.
  // The CRL cache is loaded before listening; the publisher's and pre-signer's first passes
  // (a full sweep of the inventory) start once the process serves, below.
  const startRevocation = async () => {
    const revocation = await createCrlPublisherRole(runtime, log, { schedule: false });
    started.push(() => revocation.stop());
    // Pre-signed responses are loaded into memory behind the listener; until then the
    // responder reads them from the database (same answers), and signs live what has none.
    const ocsp = await createOcspResponderRole({ inventory, config, clock: systemClock, log, live: revocation.ocspSigner, preload: "background" });
    started.push(() => ocsp.stop());
    return { revocation, ocsp };
  };
  // The HTTPS issuing API, with a certificate from this CA. /readyz is not
  // reachable before it listens: the public listener opens after it.
  // In this process by default: here it shares the cores with revocation, the scheduler and
  // often PostgreSQL, and workers would only compete with them (and delay a restart). With
  // PKI_API_WORKERS=N on PostgreSQL it runs in N worker processes, each with its own pool and
  // token sessions, while this process keeps revocation, the scheduler and the public listener.
  const startIssuingApi = async () => {
    const apiLog = log.child({ role: "api" });
    // The operator console is part of the API (TLS only: it carries the admin session).
    const api =
      config.api.allInOneWorkers > 1
        ? await startApiWorkers({ count: config.api.allInOneWorkers, authFailureLimit: config.api.authFailureLimit, events: runtime.events }, apiLog)
        : await startApi(runtime, apiLog);
    started.push(() => api.stop());
    return api;
  };
  const [{ revocation, ocsp }, api] = await Promise.all([startRevocation(), startIssuingApi(), startupChecks()]);

  const app = express();
  app.disable("x-powered-by");
  app.use(requestLogger(log), requestTimer("public"), securityHeaders);
  app.use(caDocumentsRouter(runtime));
  app.use(revocation.router);
  app.use((req, res) => sendProblem(res, 404, `no such resource: ${req.method} ${req.path}`));
  app.use(problemHandler);
  // OCSP is answered by a bare node:http handler in front of express (speed).
  const server = createServer(ocsp.handler(app));
  const port = await listen(server, config.http.port, config.http.bind);
  started.push(() => closeGracefully(server));

  // Background work, once the process serves: CRL schedule and OCSP pre-signing (their
  // first passes read the inventory), and the scheduler's jobs (renewal, alerts, issuer
  // health and lifecycle, reconciliation, clock check, responder key cleanup). Replicas
  // coordinate through PostgreSQL leases; overdue jobs run in the background, not before
  // listening.
  revocation.publisher.start();
  // New issuances and revocations are pre-signed at once; the catch-up sweep (every
  // certificate without a current response: the whole inventory on a fresh database)
  // waits a few seconds so it does not hold up the first probes and requests.
  revocation.ocspSigner.start(undefined, { firstSweepAfterMs: PRESIGN_CATCH_UP_DELAY_MS });
  if (config.scheduler.enabled) {
    // Its modules (cron, jobs, webhooks) are loaded here: nothing before listening needs them.
    const { createScheduler } = await import("@pki/jobs");
    const scheduler = createScheduler({ runtime, log: log.child({ role: "scheduler" }) });
    if (!stopping) {
      void scheduler.start();
      started.push(() => scheduler.stop());
    }
  }

  const publicUrl = `http://${config.http.bind}:${port}`;
  progress("ready");
  console.log(`root certificate: ${report.rootPemPath}`);
  if (report.adminTokenPath) console.log(`admin token:      ${report.adminTokenPath}`);
  console.log(`public listener:  ${publicUrl} (CRL, OCSP, CA certificates, /healthz, /readyz, /metrics)`);
  const workers = config.api.allInOneWorkers > 1 ? `; ${config.api.allInOneWorkers} workers` : "";
  console.log(`issuing API:      ${api.url} (OpenAPI at ${api.url}/openapi.json${workers})`);
  console.log(`operator console: ${api.url}/console/`);
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : error instanceof StartupCheckError ? `refusing to start: ${error.message}` : (error as Error).message;
  console.error(`pki: ${message}`);
  process.exit(1);
});
