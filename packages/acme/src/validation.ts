// Challenge validation, run by the ACME validator: a process that holds no key, because it
// connects to hosts requesters name. The API marks a challenge processing (within the
// account's and the provisioner's limits) and wakes the validator; the validator claims
// waiting challenges from the database, runs them fairly (ValidationLimiter: a place per
// validation, slots to whoever was served longest ago), checks CAA once control is proven,
// and records the outcome on the challenge, its authorization and its order.
import { type AcmeIdentifier, type AcmeStore, type ChangeSource, ChangeFollower } from "@pki/db";
import type { Logger } from "@pki/logger";
import { type ChallengeSettings, type ChallengeType, checkCaa, type Reservation, type ValidationLimits, ValidationLimiter, validateChallenge } from "@pki/challenges";
import { compileNamePattern, sanAllowed } from "@pki/policy";
import { acmeValidations } from "./metrics.ts";
import { ACME_ERROR } from "./problems.ts";

/** One challenge to validate. */
export interface ValidationJob {
  challengeId: string;
  type: ChallengeType;
  /** as stored: a wildcard's base domain */
  identifier: AcmeIdentifier;
  wildcard: boolean;
  token: string;
  keyAuthorization: string;
  /** the provisioner's name patterns: an http-01 redirect may lead to a DNS name they allow, besides the identifier */
  namePatterns: string[];
}

/**
 * Validations: running at once in a validator process, in total and per account, and
 * waiting (processing in the database) per account and per provisioner. The API refuses a
 * challenge past the pending bounds, so one requester cannot fill the validators' queues.
 */
export const VALIDATION_LIMITS: ValidationLimits = { running: 64, runningPerAccount: 4, pendingPerAccount: 16, pendingPerProvisioner: 256 };
/** A validation still "processing" this many deadlines after it started was lost (queueing included). */
export const STALE_VALIDATION_FACTOR = 30;
/** How long a validator's claim on a challenge lasts: longer than any wait in its queue plus one validation. */
const CLAIM_MS = 2 * 60_000;

/** Validations in this process, shared fairly between accounts and provisioners. */
export class InProcessValidator {
  private readonly limiter = new ValidationLimiter(VALIDATION_LIMITS);
  /** set when this process stops: outcomes that can no longer be recorded are not errors */
  stopping = false;

  constructor(
    private readonly store: Pick<AcmeStore, "finishChallenge">,
    private readonly settings: ChallengeSettings,
    /** CAA issuer names meaning this CA; empty skips the CAA check */
    private readonly caaIdentities: string[],
    private readonly log: Logger,
    private readonly now: () => Date,
  ) {}

  reserve(scope: { accountId: string; provisionerId: string }): Reservation {
    return this.limiter.reserve({ account: scope.accountId, provisioner: scope.provisionerId });
  }

  /** Validations running or waiting for a slot here. */
  get load(): number {
    return this.limiter.inFlight + this.limiter.queued;
  }

  start(reservation: Reservation, job: ValidationJob): void {
    const shown = job.wildcard ? `*.${job.identifier.value}` : job.identifier.value;
    void reservation
      .run(() => this.validate(job))
      .catch((error: Error) => ({ ok: false as const, problem: { type: `${ACME_ERROR}serverInternal`, detail: `validation failed: ${error.message}` } }))
      .then(async (outcome) => {
        const problem = outcome.ok ? undefined : { type: outcome.problem.type, detail: outcome.problem.detail.slice(0, 1000), status: 403 };
        await this.store.finishChallenge(job.challengeId, problem ? { ok: false, problem } : { ok: true }, this.now());
        this.log.info({ challenge: job.challengeId, type: job.type, identifier: shown, ok: outcome.ok, detail: problem?.detail }, "ACME challenge validated");
      })
      .catch((error: Error) => {
        // a validator stopping closes its database: the challenge is claimed again once its claim lapses
        if (this.stopping) this.log.info({ challenge: job.challengeId }, "ACME validation left to the next validator");
        else this.log.error({ err: error, challenge: job.challengeId }, "could not record an ACME validation");
      });
  }

  private async validate(job: ValidationJob) {
    const started = process.hrtime.bigint();
    const patterns = job.namePatterns.map(compileNamePattern);
    const mayRedirectTo = (host: string) => sanAllowed(patterns, { type: "DNS", value: host });
    let outcome = await validateChallenge({ type: job.type, identifier: job.identifier, token: job.token, keyAuthorization: job.keyAuthorization, mayRedirectTo }, this.settings);
    acmeValidations.observe({ type: job.type, outcome: outcome.ok ? "valid" : "invalid" }, Number(process.hrtime.bigint() - started) / 1e9);
    // CAA (RFC 8659) is checked once control is proven, for DNS names only.
    if (outcome.ok && job.identifier.type === "dns" && this.caaIdentities.length > 0) outcome = await checkCaa(job.identifier.value, this.caaIdentities, this.settings, { wildcard: job.wildcard });
    return outcome;
  }
}

/** What the validator process runs: claims what the API started and validates it. */
export class ValidationWorker {
  private readonly validator: InProcessValidator;
  private follower: ChangeFollower | undefined;

  constructor(
    private readonly store: Pick<AcmeStore, "finishChallenge" | "claimValidations" | "releaseValidation">,
    private readonly settings: ChallengeSettings,
    caaIdentities: string[],
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.validator = new InProcessValidator(store, settings, caaIdentities, log, now);
  }

  /** Follows the database's notifications (and polls, for the embedded database or a lost listener). */
  async start(changes: ChangeSource, pollMs = 250): Promise<void> {
    this.follower = new ChangeFollower(changes, "acmeValidations", () => this.round(), {
      pollMs,
      safetyNetMs: 5_000,
      onListenError: (error) => this.log.warn({ err: error }, "cannot listen for ACME validations; polling"),
    });
    await this.follower.start();
  }

  /** Claims as many waiting challenges as there is room for here, and starts them. */
  async round(): Promise<void> {
    const room = 2 * VALIDATION_LIMITS.running - this.validator.load;
    if (room <= 0) return;
    const now = this.now();
    const startedAfter = new Date(now.getTime() - STALE_VALIDATION_FACTOR * this.settings.timeoutMs);
    const claims = await this.store.claimValidations(now, new Date(now.getTime() + CLAIM_MS), startedAfter, room);
    for (const claim of claims) {
      let reservation: Reservation;
      try {
        reservation = this.validator.reserve(claim);
      } catch (error) {
        // the API bounds what may wait, so this is another validator's share arriving here: leave it to a later round
        this.log.warn({ err: error, challenge: claim.challengeId }, "no room for an ACME validation; it waits");
        await this.store.releaseValidation(claim.challengeId);
        continue;
      }
      this.validator.start(reservation, {
        challengeId: claim.challengeId,
        type: claim.type as ChallengeType,
        identifier: claim.identifier,
        wildcard: claim.wildcard,
        token: claim.token,
        keyAuthorization: `${claim.token}.${claim.keyThumbprint}`,
        namePatterns: claim.namePatterns,
      });
    }
    // more may be waiting than one round took
    if (claims.length === room) await this.round();
  }

  stop(): void {
    this.validator.stopping = true;
    this.follower?.stop();
  }
}
