// One API worker under node:cluster (forked by workers.ts): the issuing API on the shared
// port, with its own database pool and token sessions. It tells the primary when it
// listens, answers its metrics requests, and counts failed authentications through it.
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { loadConfig } from "@pki/config";
import { type Logger, createLogger } from "@pki/logger";
import { type CaRuntime, openCa, openInventory, systemClock } from "@pki/authority";
import { answerMetricsRequests } from "@pki/metrics";
import type { FailureCounter } from "./failure-limiter.ts";
import { startApi } from "./server.ts";
import {
  type AuthAcceptedMessage,
  type AuthAdmitAnswer,
  type AuthAdmitMessage,
  type AuthFailureAnswer,
  type AuthFailureMessage,
  type IssuedMessage,
  type ListeningMessage,
  type RevokedAnswer,
  type RevokedMessage,
  WORKER_MESSAGES,
  messageOf,
} from "./workers.ts";

/**
 * Past this a worker stops waiting for its primary: a failed authentication then counts as
 * within the limit, and a revocation is answered (the primary's roles catch up by polling).
 */
const PRIMARY_ANSWER_MS = 5_000;

/** Questions to the primary, each answered by one message carrying the question's id. */
function primaryChannel() {
  let nextId = 0;
  const waiting = new Map<number, (answer: unknown) => void>();
  const answers = new Set<string>([WORKER_MESSAGES.authFailureAnswer, WORKER_MESSAGES.authAdmitAnswer, WORKER_MESSAGES.revokedAnswer]);
  process.on("message", (message: unknown) => {
    const { type, id } = (message ?? {}) as { type?: unknown; id?: unknown };
    if (typeof type === "string" && answers.has(type) && typeof id === "number") waiting.get(id)?.(message);
  });
  return <A>(question: (id: number) => object): Promise<A | undefined> =>
    new Promise((resolve) => {
      const id = ++nextId;
      const done = (answer: unknown) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(answer as A | undefined);
      };
      const timer = setTimeout(() => done(undefined), PRIMARY_ANSWER_MS);
      waiting.set(id, done);
      process.send?.(question(id));
    });
}

/** Failed authentications counted, and checks paced, by the primary, for every worker alike. */
function primaryFailureCounter(ask: ReturnType<typeof primaryChannel>): FailureCounter {
  return {
    admit: async (source) => {
      const answer = await ask<AuthAdmitAnswer>((id): AuthAdmitMessage => ({ type: WORKER_MESSAGES.authAdmit, id, source }));
      // No answer in time: check now, as the failure is still counted afterwards.
      return messageOf<AuthAdmitAnswer>(answer, WORKER_MESSAGES.authAdmitAnswer)?.admission ?? { waitMs: 0 };
    },
    accepted: (source) => {
      const message: AuthAcceptedMessage = { type: WORKER_MESSAGES.authAccepted, source };
      process.send?.(message);
    },
    recordFailure: async (source, admitted = false) => {
      const answer = await ask<AuthFailureAnswer>((id): AuthFailureMessage => ({ type: WORKER_MESSAGES.authFailure, id, source, admitted }));
      return messageOf<AuthFailureAnswer>(answer, WORKER_MESSAGES.authFailureAnswer)?.wait;
    },
  };
}

/** Tells the primary what this worker issued and revoked (see ApiWorkersOptions.events). */
function forwardEvents(runtime: CaRuntime, ask: ReturnType<typeof primaryChannel>): void {
  runtime.events.on("issued", (event) => {
    const message: IssuedMessage = { type: WORKER_MESSAGES.issued, event: { serial: event.serial, issuerId: event.issuerId } };
    process.send?.(message);
  });
  runtime.events.beforeRevocationReported(async (event) => {
    await ask<RevokedAnswer>((id): RevokedMessage => ({ type: WORKER_MESSAGES.revoked, id, event: { ...event, revokedAt: event.revokedAt.toISOString() } }));
  });
}

/**
 * Lowers this process's CPU priority. Linux keeps a niceness per thread, so every thread
 * that exists already (V8's, libuv's pool that signs and checks CSRs) is set, and threads
 * started later inherit it from the main thread.
 */
function lowerPriority(niceness: number, log: Logger): void {
  if (niceness <= getPriority()) return; // raising it again would need privileges
  let threads: number[] = [0];
  try {
    threads = readdirSync("/proc/self/task").map(Number);
  } catch {
    // no /proc: the main thread only
  }
  try {
    for (const thread of threads) setPriority(thread, niceness);
  } catch (error) {
    log.warn({ err: error, niceness }, "could not lower the API worker's CPU priority");
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "pki-api").child({ worker: process.pid });
  // Issuance in bulk can wait a millisecond; an OCSP answer or a CRL on the same cores should not.
  lowerPriority(config.api.workerNice, log);
  const inventory = await openInventory(config, "server");
  const runtime = await openCa(config, systemClock, inventory);
  answerMetricsRequests();
  const ask = primaryChannel();
  forwardEvents(runtime, ask);
  const api = await startApi(runtime, log, { authFailures: primaryFailureCounter(ask) });
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
