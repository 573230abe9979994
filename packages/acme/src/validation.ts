// Challenge validation as the ACME server uses it: a place among the validations this
// process runs (shared fairly, see ValidationLimiter), the check itself (@pki/challenges:
// the only code that connects to hosts a requester names), CAA once control is proven, and
// the outcome recorded on the challenge, its authorization and its order. The router only
// reserves and starts; everything a validation needs is plain data, so another
// implementation may run it in a process of its own.
import type { AcmeIdentifier, AcmeStore } from "@pki/db";
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

export interface Validator {
  /** A place for one validation of this account, or ValidationLimitError when its (or its provisioner's) share is full. */
  reserve(scope: { accountId: string; provisionerId: string }): Reservation;
  /** Validates in the reserved place and records the outcome; returns at once (the client polls the authorization). */
  start(reservation: Reservation, job: ValidationJob): void;
}

/** Validations in this process: running at once in total and per account, and running or waiting per account and per provisioner. */
export const VALIDATION_LIMITS: ValidationLimits = { running: 64, runningPerAccount: 4, pendingPerAccount: 16, pendingPerProvisioner: 256 };

export class InProcessValidator implements Validator {
  private readonly limiter = new ValidationLimiter(VALIDATION_LIMITS);

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
      .catch((error: Error) => this.log.error({ err: error, challenge: job.challengeId }, "could not record an ACME validation"));
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
