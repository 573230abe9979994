// The health checks `pki doctor` prints and the console's Health page shows: each says
// ok, warn (works now, needs attention) or fail (something users rely on is broken), with
// what to do. They read the live state: the token is asked to sign, not just looked up.
import { X509Certificate, randomBytes, verify } from "node:crypto";
import { clockSkewSeconds, presentedIssuerStatus, type CaRuntime, type ServingIssuer } from "@pki/authority";
import { CrlPublisher } from "@pki/revocation";
import type { IssuerRecord } from "@pki/db";

export type CheckStatus = "ok" | "warn" | "fail";

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
}

const DAY_MS = 86_400_000;
/** Beyond this the scheduler's clock-check job alerts too: validity windows start to disagree. */
const MAX_CLOCK_SKEW_SECONDS = 5;
/** An intermediate this close to its end should already have a successor staged. */
const INTERMEDIATE_WARN_DAYS = 30;
const ROOT_WARN_DAYS = 365;
/** A job this far past its due time, with no lease on it, means no scheduler is running. */
const OVERDUE_MS = 10 * 60_000;

type Runtime = Pick<CaRuntime, "config" | "clock" | "inventory" | "keyring">;

const days = (ms: number) => `${Math.floor(ms / DAY_MS)} d`;

/** Runs every check; a check that throws is reported as failed with its error, never thrown. */
export async function runDoctor(runtime: Runtime): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const attempt = async (name: string, check: () => Promise<Omit<DoctorCheck, "name">>) => {
    try {
      checks.push({ name, ...(await check()) });
    } catch (error) {
      checks.push({ name, status: "fail", detail: (error as Error).message || String(error) });
    }
  };
  const now = runtime.clock.now();

  await attempt("database", async () => {
    const skew = await clockSkewSeconds(runtime.inventory, runtime.clock);
    const text = `reachable; this clock differs from the database's by ${skew.toFixed(1)} s`;
    return Math.abs(skew) > MAX_CLOCK_SKEW_SECONDS ? { status: "warn", detail: `${text} (more than ${MAX_CLOCK_SKEW_SECONDS} s: check NTP on both)` } : { status: "ok", detail: text };
  });

  for (const issuer of runtime.keyring.all()) await attempt(`token key of ${issuer.record.id}`, () => tokenKeyCheck(issuer));

  let issuers: IssuerRecord[] = [];
  await attempt("issuers", async () => {
    issuers = await runtime.inventory.issuers.list();
    return { status: "ok", detail: `${issuers.length} in the inventory` };
  });
  for (const hierarchy of [...new Set(issuers.map((i) => i.hierarchy))].sort()) {
    await attempt(`active intermediate (${hierarchy})`, async () => {
      const active = runtime.keyring.all().find((i) => i.record.hierarchy === hierarchy && i.record.status === "active");
      if (!active) return { status: "fail", detail: `hierarchy '${hierarchy}' has no active intermediate in this process: nothing can be issued (rotate, or activate a staged one)` };
      const left = active.facts.notAfter.getTime() - now.getTime();
      if (active.facts.notBefore > now) return { status: "fail", detail: `${active.record.id} is not valid until ${active.facts.notBefore.toISOString()} (check the system clock)` };
      if (left <= 0) return { status: "fail", detail: `${active.record.id} expired at ${active.facts.notAfter.toISOString()}: rotate it (pki issuers rotate)` };
      const detail = `${active.record.id} valid until ${active.facts.notAfter.toISOString()} (${days(left)} left)`;
      return left < INTERMEDIATE_WARN_DAYS * DAY_MS ? { status: "warn", detail: `${detail}: rotate soon` } : { status: "ok", detail };
    });
  }
  for (const root of issuers.filter((i) => i.role === "root")) {
    await attempt(`root ${root.id}`, async () => {
      const left = root.notAfter.getTime() - now.getTime();
      if (left <= 0) return { status: "fail", detail: `expired at ${root.notAfter.toISOString()}: nothing under it validates` };
      const detail = `valid until ${root.notAfter.toISOString()} (${days(left)} left)`;
      return left < ROOT_WARN_DAYS * DAY_MS ? { status: "warn", detail: `${detail}: plan a new root (pki init --hierarchy) and distribute it` } : { status: "ok", detail };
    });
  }

  await attempt("CRLs", async () => {
    const publishing = await new CrlPublisher({ inventory: runtime.inventory, keyring: runtime.keyring, config: runtime.config, clock: runtime.clock }).publishingIssuers();
    const states = new Map((await runtime.inventory.crls.states()).map((s) => [s.issuerId, s.full]));
    const stale = [];
    for (const issuer of publishing) {
      const full = states.get(issuer.record.id);
      if (!full) stale.push(`${issuer.record.id} has none`);
      else if (full.nextUpdate <= now) stale.push(`${issuer.record.id}'s #${full.number} passed its nextUpdate ${full.nextUpdate.toISOString()}`);
    }
    if (stale.length) return { status: "fail", detail: `${stale.join("; ")}: relying parties reject stale CRLs; publish now (pki crl publish) and check the CRL publisher runs` };
    return { status: "ok", detail: `${publishing.length} issuer(s) publish, every full CRL is within its nextUpdate` };
  });

  await attempt("scheduler", async () => {
    const jobs = await runtime.inventory.scheduler.jobs();
    if (jobs.length === 0) return { status: "warn", detail: "no scheduler has registered its jobs: nothing renews certificates or sends alerts (start one, PKI_SCHEDULER_ENABLED)" };
    const failing = jobs.filter((j) => j.consecutiveFailures > 0).map((j) => `${j.job} (${j.consecutiveFailures} failure(s) in a row)`);
    const overdue = jobs.filter((j) => !j.leaseHolder && now.getTime() - j.nextDueAt.getTime() > OVERDUE_MS).map((j) => j.job);
    const problems = [...(failing.length ? [`failing: ${failing.join(", ")}`] : []), ...(overdue.length ? [`overdue (is a scheduler running?): ${overdue.join(", ")}`] : [])];
    if (problems.length) return { status: "warn", detail: `${problems.join("; ")}; see pki scheduler status` };
    return { status: "ok", detail: `${jobs.length} jobs, none failing or overdue` };
  });
  return checks;
}

/**
 * Asks the token to sign a fresh challenge with the issuer's key and checks the signature
 * against the public key in the issuer's certificate: the key is there, usable, and the
 * one the certificate names.
 */
async function tokenKeyCheck(issuer: ServingIssuer): Promise<Omit<DoctorCheck, "name">> {
  const challenge = randomBytes(32);
  const signature = await issuer.signer.sign(challenge);
  const publicKey = new X509Certificate(issuer.record.certificateDer).publicKey;
  if (!verify(issuer.signer.hash, challenge, publicKey, signature)) {
    return { status: "fail", detail: `the token key ${issuer.record.keyUri} does not match the certificate's public key: this issuer's signatures would not validate` };
  }
  return { status: "ok", detail: `${presentedIssuerStatus(issuer.record)}: the token signed a test challenge and the certificate's public key verifies it` };
}
