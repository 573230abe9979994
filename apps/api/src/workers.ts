// The issuing API on every core: node:cluster workers share the API port, each with its own
// database pool and token sessions (see worker.ts). The primary signs nothing; it starts
// the workers, replaces one that dies, counts failed authentications for all of them, and
// answers /metrics for all of them (@pki/metrics scrapeMetrics).
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import type { CaEvents, CertificateEvent, RevokedEvent } from "@pki/authority";
import type { Logger } from "@pki/logger";
import { type Admission, AuthFailureLimiter } from "./failure-limiter.ts";

/** Messages between the primary and its API workers. */
export const WORKER_MESSAGES = {
  listening: "pki:api-listening",
  authFailure: "pki:auth-failure",
  authFailureAnswer: "pki:auth-failure-answer",
  authAdmit: "pki:auth-admit",
  authAdmitAnswer: "pki:auth-admit-answer",
  authAccepted: "pki:auth-accepted",
  issued: "pki:issued",
  revoked: "pki:revoked",
  revokedAnswer: "pki:revoked-answer",
} as const;

export interface ListeningMessage {
  type: typeof WORKER_MESSAGES.listening;
  url: string;
  port: number;
}
export interface AuthFailureMessage {
  type: typeof WORKER_MESSAGES.authFailure;
  id: number;
  source: string;
  /** already counted when the primary admitted its check */
  admitted: boolean;
}
export interface AuthAdmitMessage {
  type: typeof WORKER_MESSAGES.authAdmit;
  id: number;
  source: string;
}
export interface AuthAdmitAnswer {
  type: typeof WORKER_MESSAGES.authAdmitAnswer;
  id: number;
  admission: Admission;
}
/** An admitted credential was valid (no answer). */
export interface AuthAcceptedMessage {
  type: typeof WORKER_MESSAGES.authAccepted;
  source: string;
}
export interface AuthFailureAnswer {
  type: typeof WORKER_MESSAGES.authFailureAnswer;
  id: number;
  wait: number | undefined;
}

export interface IssuedMessage {
  type: typeof WORKER_MESSAGES.issued;
  event: CertificateEvent;
}
/** `event.revokedAt` crosses the channel as an ISO string */
export interface RevokedMessage {
  type: typeof WORKER_MESSAGES.revoked;
  id: number;
  event: Omit<RevokedEvent, "revokedAt"> & { revokedAt: string };
}
export interface RevokedAnswer {
  type: typeof WORKER_MESSAGES.revokedAnswer;
  id: number;
}

export const messageOf = <T extends { type: string }>(message: unknown, type: T["type"]): T | undefined =>
  typeof message === "object" && message !== null && (message as { type?: unknown }).type === type ? (message as T) : undefined;

export interface ApiWorkers {
  /** https://host:port of the shared listener */
  url: string;
  port: number;
  /** workers serving now, of how many there should be */
  serving(): { serving: number; wanted: number };
  stop(): Promise<void>;
}

/**
 * Set when this module is compiled into a bundle (apps/server/bundle.mjs `define`): the URL
 * of the bundle file it runs from, and the file name of the API worker beside it. Unset
 * (typeof "undefined") when it runs as TypeScript through tsx.
 */
declare const BUNDLE_MODULE_URL: string | undefined;
declare const BUNDLED_API_WORKER_FILE: string | undefined;
declare const BUNDLED_ACME_VALIDATOR_FILE: string | undefined;

/**
 * The file an API worker runs: the bundle's own worker when this primary runs bundled
 * (`npm start`, the image's dist/), so workers need no tsx either; otherwise worker.ts,
 * which the workers load through the tsx they inherit in process.execArgv
 * (`node --import tsx apps/api/src/main.ts`).
 */
export function apiWorkerEntry(): string {
  if (typeof BUNDLE_MODULE_URL === "string" && typeof BUNDLED_API_WORKER_FILE === "string") return fileURLToPath(new URL(BUNDLED_API_WORKER_FILE, BUNDLE_MODULE_URL));
  return fileURLToPath(new URL("./worker.ts", import.meta.url));
}

/** The file the keyless ACME validator child runs: the bundle's own entry when bundled, the role's TypeScript otherwise. */
export function acmeValidatorEntry(): string {
  if (typeof BUNDLE_MODULE_URL === "string" && typeof BUNDLED_ACME_VALIDATOR_FILE === "string") return fileURLToPath(new URL(BUNDLED_ACME_VALIDATOR_FILE, BUNDLE_MODULE_URL));
  return fileURLToPath(new URL("../../acme-validator/src/main.ts", import.meta.url));
}

/** V8 flags that trade speed for memory (package.json's start script uses the second). */
const FOOTPRINT_FLAGS = ["--optimize-for-size", "--max-semi-space-size"];

/** A worker that dies is replaced after this long (a crash loop costs one fork a second). */
const RESTART_DELAY_MS = 1_000;
/** How long a stopping worker may take to finish its requests before it is killed. */
const STOP_GRACE_MS = 15_000;

export interface ApiWorkersOptions {
  count: number;
  authFailureLimit: number;
  /**
   * The all-in-one server's own events: what the workers issue and revoke is replayed here,
   * so its OCSP pre-signer and CRL publisher react at once, and a revoke call answers only
   * once this process has re-signed the certificate's OCSP response (as in one process).
   */
  events?: CaEvents;
}

/**
 * Forks `count` API workers and resolves once the first one listens; the others start
 * after it, so the listener certificate it issues (and saves in the data dir) is the one
 * they load instead of each issuing their own. If the first worker exits before it
 * listens, the start fails (its own error is on stderr); a later one that dies is replaced.
 */
export async function startApiWorkers({ count, authFailureLimit, events }: ApiWorkersOptions, log: Logger): Promise<ApiWorkers> {
  // Workers are where throughput is: they leave out the V8 flags `npm start` uses to keep
  // the embedded quickstart small (workers only run on PostgreSQL).
  const execArgv = process.execArgv.filter((flag) => !FOOTPRINT_FLAGS.some((footprint) => flag.startsWith(footprint)));
  cluster.setupPrimary({ exec: apiWorkerEntry(), execArgv });
  const limiter = new AuthFailureLimiter(authFailureLimit);
  const live = new Set<Worker>();
  let stopping = false;
  let listening: ListeningMessage | undefined;

  const fork = (): Promise<ListeningMessage> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      let ready = false;
      worker.on("message", (message: unknown) => {
        const up = messageOf<ListeningMessage>(message, WORKER_MESSAGES.listening);
        if (up) {
          ready = true;
          live.add(worker);
          return resolve(up);
        }
        const failure = messageOf<AuthFailureMessage>(message, WORKER_MESSAGES.authFailure);
        if (failure && worker.isConnected()) {
          const answer: AuthFailureAnswer = { type: WORKER_MESSAGES.authFailureAnswer, id: failure.id, wait: limiter.recordFailure(String(failure.source), failure.admitted === true) };
          worker.send(answer);
        }
        const admit = messageOf<AuthAdmitMessage>(message, WORKER_MESSAGES.authAdmit);
        if (admit && worker.isConnected()) {
          const answer: AuthAdmitAnswer = { type: WORKER_MESSAGES.authAdmitAnswer, id: admit.id, admission: limiter.admit(String(admit.source)) };
          worker.send(answer);
        }
        const accepted = messageOf<AuthAcceptedMessage>(message, WORKER_MESSAGES.authAccepted);
        if (accepted) limiter.accepted(String(accepted.source));
        const issued = messageOf<IssuedMessage>(message, WORKER_MESSAGES.issued);
        if (issued) events?.emit("issued", issued.event);
        const revoked = messageOf<RevokedMessage>(message, WORKER_MESSAGES.revoked);
        if (revoked) {
          const answer: RevokedAnswer = { type: WORKER_MESSAGES.revokedAnswer, id: revoked.id };
          // Each step handles its own failures (CaEvents); the worker is answered either way.
          void (events?.revocationCommitted({ ...revoked.event, revokedAt: new Date(revoked.event.revokedAt) }) ?? Promise.resolve()).finally(() => {
            if (worker.isConnected()) worker.send(answer);
          });
        }
      });
      worker.on("exit", (code, signal) => {
        live.delete(worker);
        if (!ready) return reject(new Error(`an API worker exited while starting (${signal ?? `exit code ${code}`})`));
        if (stopping) return;
        log.error({ pid: worker.process.pid, code, signal }, "an API worker died; starting another");
        setTimeout(() => {
          if (!stopping) fork().catch((error: Error) => log.error({ err: error }, "could not replace an API worker; the others keep serving"));
        }, RESTART_DELAY_MS).unref();
      });
    });

  const stop = async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            const kill = setTimeout(() => worker.process.kill("SIGKILL"), STOP_GRACE_MS);
            worker.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            worker.process.kill("SIGTERM");
          }),
      ),
    );
  };

  try {
    listening = await fork();
  } catch (error) {
    await stop();
    throw error;
  }
  // The port serves from here on: the other workers join it in the background, so a
  // restart is ready as soon as one worker is (each takes seconds to load and open the token).
  for (let i = 1; i < count; i++)
    fork().catch((error: Error) => {
      if (!stopping) log.error({ err: error }, "an API worker did not start; the others serve");
    });
  return {
    url: listening.url,
    port: listening.port,
    serving: () => ({ serving: live.size, wanted: count }),
    stop,
  };
}
