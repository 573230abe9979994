// The ACME validator as a process: apps/acme-validator runs it as a role of its own, and an
// API process starts it as its child (ValidatorChild). It loads no PKCS#11 module and reads
// no PIN or admin token: validation connects to hosts requesters name, and a flaw there
// must not reach a key. It talks to the API only through the database (claims, outcomes)
// and, as a child, through "wake" messages on its IPC channel.
import { loadValidatorConfig } from "@pki/config";
import { openAcmeValidationStore } from "@pki/db";
import { cachedReadiness, closeGracefully, startOpsListener } from "@pki/http-kit";
import { createLogger } from "@pki/logger";
import { ValidationWorker } from "./validation.ts";

/** A child's parent says a challenge is waiting. */
export const WAKE_MESSAGE = "acme-validation-waiting";

export async function runAcmeValidator(): Promise<void> {
  const config = loadValidatorConfig();
  const log = createLogger(config.logLevel, "acme-validator");
  const { resolver, ...settings } = config.challenges;
  const inventory = await openAcmeValidationStore({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir, embeddedRole: "cli" });
  const worker = new ValidationWorker(inventory.acme, { ...settings, ...(resolver ? { resolver } : {}) }, config.caaIdentities, log);
  await worker.start(inventory);
  const round = () => void worker.round().catch((error: Error) => log.error({ err: error }, "could not claim ACME validations"));
  process.on("message", (message) => {
    if (message === WAKE_MESSAGE) round();
  });
  // A child (started with an IPC channel) is watched by its parent; a validator running as
  // its own role answers health and readiness checks like the other roles.
  const ops = process.send
    ? undefined
    : await startOpsListener(
        config.http,
        cachedReadiness(async () => ({
          database: await inventory.ping().then(
            () => "ok",
            () => "unavailable",
          ),
        })),
      );
  log.info({ pid: process.pid, ...(ops ? { port: config.http.port } : {}) }, "ACME validator running");
  const stop = async () => {
    worker.stop();
    if (ops) await closeGracefully(ops);
    await inventory.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  // a child ends with its parent (the IPC channel closes)
  process.on("disconnect", () => void stop());
}
