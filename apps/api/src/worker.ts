// One API worker under node:cluster (forked by workers.ts): the issuing API on the shared
// port, with its own database pool and token sessions. It tells the primary when it
// listens, answers its metrics requests, and counts failed authentications through it.
import { loadConfig } from "@pki/config";
import { createLogger } from "@pki/logger";
import { openCa, openInventory, systemClock } from "@pki/authority";
import { answerMetricsRequests } from "@pki/metrics";
import type { FailureCounter } from "./auth.ts";
import { startApi } from "./server.ts";
import { type AuthFailureAnswer, type AuthFailureMessage, type ListeningMessage, WORKER_MESSAGES, messageOf } from "./workers.ts";

/** Past this the worker counts the failure as within the limit rather than hold the request. */
const PRIMARY_ANSWER_MS = 1_000;

/** Failed authentications counted by the primary, for every worker alike. */
function primaryFailureCounter(): FailureCounter {
  let nextId = 0;
  const waiting = new Map<number, (wait: number | undefined) => void>();
  process.on("message", (message: unknown) => {
    const answer = messageOf<AuthFailureAnswer>(message, WORKER_MESSAGES.authFailureAnswer);
    if (answer) waiting.get(answer.id)?.(answer.wait);
  });
  return {
    recordFailure: (source) =>
      new Promise((resolve) => {
        const id = ++nextId;
        const done = (wait: number | undefined) => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(wait);
        };
        const timer = setTimeout(() => done(undefined), PRIMARY_ANSWER_MS);
        waiting.set(id, done);
        const ask: AuthFailureMessage = { type: WORKER_MESSAGES.authFailure, id, source };
        process.send?.(ask);
      }),
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "pki-api").child({ worker: process.pid });
  const inventory = await openInventory(config, "server");
  const runtime = await openCa(config, systemClock, inventory);
  answerMetricsRequests();
  const api = await startApi(runtime, log, { authFailures: primaryFailureCounter() });
  const up: ListeningMessage = { type: WORKER_MESSAGES.listening, url: api.url, port: api.port };
  process.send?.(up);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await api.stop();
    await runtime.close();
    await inventory.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  // Ctrl-C reaches the whole process group; the primary stops the workers it has anyway.
  process.on("SIGINT", () => void stop());
  // The primary is gone (killed): a worker must not serve on alone.
  process.on("disconnect", () => void stop());
}

main().catch((error: unknown) => {
  console.error(`pki-api worker: ${(error as Error).message}`);
  process.exit(1);
});
