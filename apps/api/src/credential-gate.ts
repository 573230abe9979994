// Where a secret credential (a bearer token, a session cookie, a token to log in with) is
// checked, paced by the failure limiter so a guessing source cannot have guesses checked
// faster than a growing interval, while credentials that already worked from that source
// are checked at once, so an operator or agent behind the same address as a guesser
// keeps working. Client certificates do not come here: they cannot be guessed.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Counter } from "prom-client";
import { CaError } from "@pki/x509";
import { registry } from "@pki/http-kit";
import type { FailureCounter } from "./failure-limiter.ts";

/** Entries kept at most: only accepted credentials are kept, so only their holders fill it. */
const MAX_TRUSTED = 10_000;
/** An accepted credential is checked without waiting from its source for this long after its last use. */
const TRUSTED_MS = 24 * 3600_000;

const checks = new Counter({
  name: "pki_api_credential_checks_total",
  help: "secret credentials (tokens, session cookies) presented to the API: accepted, rejected after a check, or refused unchecked because their source is past its failure limit",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

/** A source past its failure limit; answered 429 with Retry-After. */
export class TooManyFailures extends Error {
  constructor(
    readonly sourceIp: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown; unchecked?: boolean },
  ) {
    super(
      `too many failed authentications from ${sourceIp}; ${options?.unchecked ? "this credential was not checked: " : ""}try again in ${retryAfterSeconds} s (credentials from this address are now checked one at a time, at a growing interval; one already accepted from it is checked at once)`,
      options,
    );
  }
}

export class CredentialGate {
  /** `source \n sha256(secret)` → when trust lapses; in use order (oldest first) */
  private readonly trusted = new Map<string, number>();
  /** checks under way, so identical concurrent requests wait for the first instead of each taking a turn */
  private readonly underWay = new Map<string, Promise<unknown>>();

  constructor(
    private readonly limiter: FailureCounter,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs `verify` (which throws CaError "unauthorized" for a credential that is not
   * valid) for `secret` presented by `source`: at once when this source had it accepted
   * before, else when the limiter admits it. A failure counts against the source; past
   * the limit it is thrown as TooManyFailures.
   */
  async check<T>(source: string, secret: string, verify: () => Promise<T>): Promise<T> {
    const key = `${source.slice(0, 64)}\n${createHash("sha256").update(secret).digest("base64")}`;
    const same = this.underWay.get(key);
    if (same) await same.catch(() => undefined);
    if (this.isTrusted(key)) return this.run(source, key, verify, false);
    const attempt = this.admitAndRun(source, key, verify);
    this.underWay.set(key, attempt);
    try {
      return await attempt;
    } finally {
      if (this.underWay.get(key) === attempt) this.underWay.delete(key);
    }
  }

  private async admitAndRun<T>(source: string, key: string, verify: () => Promise<T>): Promise<T> {
    const admission = await this.limiter.admit(source);
    if ("refuseForSeconds" in admission) {
      checks.inc({ outcome: "unchecked" });
      throw new TooManyFailures(source, admission.refuseForSeconds, { unchecked: true });
    }
    if (admission.waitMs > 0) await sleep(admission.waitMs);
    return this.run(source, key, verify, true);
  }

  private async run<T>(source: string, key: string, verify: () => Promise<T>, admitted: boolean): Promise<T> {
    let result: T;
    try {
      result = await verify();
    } catch (error) {
      if (!(error instanceof CaError && error.kind === "unauthorized")) {
        // Not a wrong credential (a database outage, or a valid one refused as 403).
        if (admitted) this.limiter.accepted(source);
        throw error;
      }
      this.trusted.delete(key);
      checks.inc({ outcome: "rejected" });
      const wait = await this.limiter.recordFailure(source, admitted);
      throw wait === undefined ? error : new TooManyFailures(source, wait, { cause: error });
    }
    checks.inc({ outcome: "accepted" });
    if (admitted) this.limiter.accepted(source);
    this.trust(key);
    return result;
  }

  private isTrusted(key: string): boolean {
    const until = this.trusted.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.trusted.delete(key);
    return false;
  }

  private trust(key: string): void {
    this.trusted.delete(key); // re-inserted last: the Map's order is the order of use
    this.trusted.set(key, this.now() + TRUSTED_MS);
    for (const oldest of this.trusted.keys()) {
      if (this.trusted.size <= MAX_TRUSTED) break;
      this.trusted.delete(oldest);
    }
  }
}
