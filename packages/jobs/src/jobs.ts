// The scheduler's built-in jobs. Each reads what to do from the inventory (never from
// memory), so a run that fails half way is completed by the next run and no work is lost.
import type { Config } from "@pki/config";
import type { Inventory, IssuerRecord } from "@pki/db";
import {
  type Authority,
  type Clock,
  type Keyring,
  activateDueIntermediates,
  clockSkewSeconds,
  writeAllTrustFiles,
  expireRetiredIntermediates,
  reconcilePendingIntents,
  successorRequester,
} from "@pki/authority";
import { destroyExpiredResponderKeys } from "@pki/revocation";
import { toPem } from "@pki/x509";
import type { Logger } from "@pki/logger";
import { alertsSentTotal, clockSkewSeconds as clockSkewGauge, intentsClosedTotal, renewalsTotal, responderKeysDestroyedTotal } from "./metrics.ts";
import type { WebhookSender } from "./webhook.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;

export type JobCounts = Record<string, number>;

/** What a job gets to work with. */
export interface JobContext {
  config: Config;
  clock: Clock;
  inventory: Inventory;
  authority: Authority;
  keyring: Keyring;
  log: Logger;
  webhooks: WebhookSender;
}

export interface JobDefinition {
  /** stable name: the key of its lease and run records */
  name: string;
  /** node-cron expression */
  schedule: string;
  run(context: JobContext): Promise<JobCounts>;
}

/** Raised at the end of a run that did part of its work: the run is recorded as failed and retried. */
export class PartialFailure extends Error {
  constructor(
    message: string,
    readonly counts: JobCounts,
  ) {
    super(message);
  }
}

const webhookEvent = (ctx: JobContext, event: string, payload: Record<string, unknown>) => (ctx.webhooks.enabled ? { event, payload } : undefined);

/**
 * Auto-renewal: certificates marked autoRenew are re-issued from their stored key and
 * names once `renewAtFraction` (2/3) of their lifetime has passed; the successor is linked
 * to its predecessor by the issuance cycle. Announcements are a separate sweep over
 * "renewed but not announced", so a crash between the two loses no announcement.
 */
export const renewalJob = (config: Config): JobDefinition => ({
  name: "renewal",
  schedule: config.scheduler.schedules.renewal,
  async run(ctx) {
    const counts = { due: 0, renewed: 0, failed: 0, skipped: 0, announced: 0 };
    // Batches until nothing is due; a certificate that failed stays due for the next run, not this one.
    const attempted = new Set<string>();
    for (let batch = 0; batch < 20; batch++) {
      const due = await ctx.inventory.certificateScans.dueForRenewal(ctx.clock.now(), ctx.config.scheduler.renewAtFraction, [...attempted]);
      if (due.length === 0) break;
      counts.due += due.length;
      for (const record of due) {
        attempted.add(record.serial);
        try {
          const successor = await ctx.authority.renew({ predecessor: record, requester: await successorRequester(ctx.inventory, record, "scheduler:renewal") });
          counts.renewed++;
          renewalsTotal.inc({ outcome: "renewed" });
          ctx.log.info({ predecessor: record.serial, successor: successor.serial, notAfter: successor.notAfter }, "certificate renewed");
        } catch (error) {
          const kind = (error as { kind?: string }).kind;
          if (kind === "forbidden" || kind === "bad_request") {
            counts.skipped++;
            renewalsTotal.inc({ outcome: "skipped" });
            ctx.log.warn({ serial: record.serial, reason: (error as Error).message }, "certificate not renewed");
          } else {
            counts.failed++;
            renewalsTotal.inc({ outcome: "failed" });
            ctx.log.error({ serial: record.serial, err: error }, "renewal failed; the next run retries it");
          }
        }
      }
    }
    for (const { predecessor, successor } of await ctx.inventory.certificateScans.renewedUnannounced(ctx.clock.now())) {
      const next = await ctx.inventory.certificates.get(successor);
      if (!next?.der) continue;
      const payload = {
        predecessorSerial: predecessor,
        serial: successor,
        issuerId: next.issuerId,
        subject: next.subject,
        sans: next.sans,
        notBefore: next.notBefore.toISOString(),
        notAfter: next.notAfter.toISOString(),
        certificate: toPem(next.der),
        href: `/v1/certificates/${successor}`,
      };
      if (
        await ctx.inventory.alerts.sendOnce(
          { subjectKind: "certificate", subjectId: predecessor, alert: "renewed", details: { successor } },
          ctx.clock.now(),
          webhookEvent(ctx, "certificate.renewed", payload),
        )
      ) {
        counts.announced++;
      }
    }
    if (counts.announced) await ctx.webhooks.deliverDue().catch((error: Error) => ctx.log.warn({ err: error }, "webhook delivery deferred"));
    if (counts.failed) throw new PartialFailure(`${counts.failed} of ${counts.due} renewals failed`, counts);
    return counts;
  },
});

/**
 * Which thresholds (days) a subject has crossed that it ever had ahead of it: a 24-hour
 * certificate never had 7 days to go, so it gets no 7-day alert.
 */
export function crossedThresholds(thresholdDays: number[], notBefore: Date, notAfter: Date, now: Date): number[] {
  const left = notAfter.getTime() - now.getTime();
  const lifetime = notAfter.getTime() - notBefore.getTime();
  // The hour of margin covers backdating: a 24-hour certificate is 24 h + 60 s long.
  return thresholdDays.filter((days) => left <= days * DAY && lifetime > days * DAY + HOUR).sort((a, b) => a - b);
}

const expiryAlertName = (days: number) => `expiry-${days}d`;

/**
 * Expiry alerts at 7, 3 and 1 days (configurable) before notAfter, for leaves without a
 * successor and for roots and active or staged intermediates; once per threshold per
 * certificate. A subject that crossed several thresholds since the last run gets only the
 * most urgent one; the others are marked as passed.
 */
export const expiryAlertsJob = (config: Config): JobDefinition => ({
  name: "expiry-alerts",
  schedule: config.scheduler.schedules.expiryAlerts,
  async run(ctx) {
    const counts = { leavesExpiring: 0, issuersExpiring: 0, sent: 0 };
    const thresholds = ctx.config.scheduler.expiryAlertDays;
    const now = ctx.clock.now();
    const horizon = new Date(now.getTime() + Math.max(...thresholds) * DAY);
    const send = async (subjectKind: "certificate" | "issuer", subjectId: string, notBefore: Date, notAfter: Date, describe: Record<string, unknown>) => {
      const crossed = crossedThresholds(thresholds, notBefore, notAfter, now);
      if (crossed.length === 0) return;
      const [urgent, ...passed] = crossed as [number, ...number[]];
      const payload = { kind: subjectKind, id: subjectId, thresholdDays: urgent, notAfter: notAfter.toISOString(), secondsLeft: Math.round((notAfter.getTime() - now.getTime()) / 1000), ...describe };
      const sent = await ctx.inventory.alerts.sendOnce(
        { subjectKind, subjectId, alert: expiryAlertName(urgent), details: payload },
        now,
        webhookEvent(ctx, `${subjectKind}.expiring`, payload),
        passed.map(expiryAlertName),
      );
      if (sent) {
        counts.sent++;
        alertsSentTotal.inc({ kind: subjectKind, alert: expiryAlertName(urgent) });
        ctx.log.warn(payload, `${subjectKind} ${subjectId} expires within ${urgent} day(s)`);
      }
    };
    // Certificates shorter than the smallest threshold (plus the backdating margin) never get an alert.
    const minLifetimeMs = Math.min(...thresholds) * DAY + HOUR;
    for (let after: { notAfter: Date; serial: string } | undefined; ; ) {
      const page = await ctx.inventory.certificateScans.expiringBetween(now, horizon, minLifetimeMs, after);
      counts.leavesExpiring += page.length;
      for (const leaf of page)
        await send("certificate", leaf.serial, leaf.notBefore, leaf.notAfter, { issuerId: leaf.issuerId, subject: leaf.subject, sans: leaf.sans, profile: leaf.profile, autoRenew: leaf.autoRenew });
      if (page.length < 1000) break;
      after = page[page.length - 1];
    }
    const issuers = (await ctx.inventory.issuers.list()).filter((i) => (i.status === "active" || i.status === "staged") && i.notAfter > now && i.notAfter <= horizon);
    counts.issuersExpiring = issuers.length;
    for (const issuer of issuers)
      await send("issuer", issuer.id, issuer.notBefore, issuer.notAfter, { role: issuer.role, status: issuer.status, hierarchy: issuer.hierarchy, subject: issuer.subject });
    if (counts.sent) await ctx.webhooks.deliverDue().catch((error: Error) => ctx.log.warn({ err: error }, "webhook delivery deferred"));
    return counts;
  },
});

/**
 * Issuer health: an active intermediate that expires before the longest leaf it may issue
 * (PKI_MAX_TTL_SECONDS) would hand out shortened certificates from then on. It is flagged
 * PKI_ISSUER_ROTATION_LEAD_DAYS before that point, once per intermediate, unless a
 * successor is already staged. A hierarchy without an active intermediate is flagged too.
 */
export const issuerHealthJob = (config: Config): JobDefinition => ({
  name: "issuer-health",
  schedule: config.scheduler.schedules.issuerHealth,
  async run(ctx) {
    const counts = { checked: 0, flagged: 0 };
    const now = ctx.clock.now();
    const all = await ctx.inventory.issuers.list();
    const maxLeafMs = ctx.config.ca.maxTtlSeconds * 1000;
    const leadMs = ctx.config.scheduler.issuerRotationLeadDays * DAY;
    const flag = async (issuer: IssuerRecord, alert: string, problem: string, extra: Record<string, unknown> = {}) => {
      const payload = {
        kind: "issuer",
        id: issuer.id,
        hierarchy: issuer.hierarchy,
        problem,
        notAfter: issuer.notAfter.toISOString(),
        action: `pki issuers rotate --hierarchy ${issuer.hierarchy}`,
        ...extra,
      };
      if (await ctx.inventory.alerts.sendOnce({ subjectKind: "issuer", subjectId: issuer.id, alert, details: payload }, now, webhookEvent(ctx, "issuer.health", payload))) {
        counts.flagged++;
        alertsSentTotal.inc({ kind: "issuer", alert });
        ctx.log.warn(payload, `issuer ${issuer.id}: ${problem}`);
      }
    };
    for (const root of all.filter((i) => i.role === "root" && i.status === "active")) {
      if (!all.some((i) => i.hierarchy === root.hierarchy && i.role === "intermediate" && i.status === "active")) {
        await flag(root, "no-active-intermediate", `hierarchy '${root.hierarchy}' has no active intermediate; nothing can be issued in it`);
      }
    }
    for (const issuer of all.filter((i) => i.role === "intermediate" && i.status === "active")) {
      counts.checked++;
      const shortensLeavesFrom = new Date(issuer.notAfter.getTime() - maxLeafMs);
      if (now.getTime() < shortensLeavesFrom.getTime() - leadMs) continue;
      const successorStaged = all.some((i) => i.hierarchy === issuer.hierarchy && i.role === "intermediate" && i.status === "staged" && !i.revokedAt && i.notAfter > issuer.notAfter);
      if (successorStaged) continue;
      await flag(
        issuer,
        "rotation-due",
        `expires ${issuer.notAfter.toISOString()}, before the longest leaf it may issue (${ctx.config.ca.maxTtlSeconds} s); from ${shortensLeavesFrom.toISOString()} its certificates are cut short`,
        {
          shortensLeavesFrom: shortensLeavesFrom.toISOString(),
        },
      );
    }
    if (counts.flagged) await ctx.webhooks.deliverDue().catch((error: Error) => ctx.log.warn({ err: error }, "webhook delivery deferred"));
    return counts;
  },
});

/**
 * Issuer lifecycle: staged intermediates whose activation time has come become active
 * (retiring the previous one), and retired intermediates whose last certificate has
 * expired become expired. This process's keyring reloads at once; others within
 * PKI_KEYRING_RELOAD_SECONDS.
 */
export const issuerLifecycleJob = (config: Config): JobDefinition => ({
  name: "issuer-lifecycle",
  schedule: config.scheduler.schedules.issuerLifecycle,
  async run(ctx) {
    const activations = await activateDueIntermediates(ctx.config, ctx.inventory, ctx.clock, "scheduler:issuer-lifecycle");
    const expired = await expireRetiredIntermediates(ctx.inventory, ctx.clock, "scheduler:issuer-lifecycle");
    for (const a of activations) {
      const payload = { id: a.activated.id, hierarchy: a.activated.hierarchy, retired: a.retired.map((r) => r.id), notAfter: a.activated.notAfter.toISOString() };
      ctx.log.info(payload, "scheduled intermediate activated");
      if (ctx.webhooks.enabled) await ctx.inventory.webhookOutbox.enqueue("issuer.activated", payload, ctx.clock.now());
    }
    for (const e of expired) ctx.log.info({ id: e.id }, "retired intermediate has no unexpired certificate left; now expired");
    // Intermediates also leave intermediates.pem when their own certificate expires, which no event marks.
    // A replica without a writable data dir still does the lifecycle; the files are a convenience of the host that has one.
    await writeAllTrustFiles(ctx.config, ctx.inventory, ctx.clock.now()).catch((error: Error) => ctx.log.warn({ err: error }, "could not rewrite the trust files in the data dir"));
    if (activations.length || expired.length) {
      await ctx.keyring.reload();
      await ctx.webhooks.deliverDue().catch((error: Error) => ctx.log.warn({ err: error }, "webhook delivery deferred"));
    }
    return { activated: activations.length, expired: expired.length };
  },
});

/** Retries webhook events that could not be delivered when they were raised. */
export const webhookDeliveryJob = (config: Config): JobDefinition => ({
  name: "webhook-delivery",
  schedule: config.scheduler.schedules.webhookDelivery,
  async run(ctx) {
    const counts = await ctx.webhooks.deliverDue();
    return { ...counts, pending: await ctx.inventory.webhookOutbox.pendingCount() };
  },
});

/** Passes per run; each closes up to a thousand intents, the next run continues. */
const RECONCILE_BATCHES_PER_RUN = 20;

/**
 * Closes issuance intents a crash or database outage left `pending` (recorded, maybe
 * signed, never stored or released) as `failed`, with an audit event each. A job rather
 * than a loop in one role, so every deployment closes them, whichever processes it runs.
 */
export const reconcileIntentsJob = (config: Config): JobDefinition => ({
  name: "reconcile-intents",
  schedule: config.scheduler.schedules.reconcileIntents,
  async run(ctx) {
    let closed = 0;
    for (let batch = 0; batch < RECONCILE_BATCHES_PER_RUN; batch++) {
      const serials = await reconcilePendingIntents(ctx.inventory, ctx.clock);
      if (serials.length === 0) break;
      closed += serials.length;
      intentsClosedTotal.inc(serials.length);
      ctx.log.warn({ count: serials.length, serials }, "closed pending intents left by an interrupted issuance");
    }
    return { closed };
  },
});

/** Beyond this, certificate times, CRL and OCSP validity and the reconcile grace period go wrong. */
export const MAX_CLOCK_SKEW_SECONDS = 5;

/**
 * Compares this machine's clock with the database server's: every role stamps notBefore,
 * thisUpdate and due times from its own clock, and the inventory's times come from the
 * database's. Exported as a gauge; a skew beyond 5 s is logged as a warning.
 */
export const clockCheckJob = (config: Config): JobDefinition => ({
  name: "clock-check",
  schedule: config.scheduler.schedules.clockCheck,
  async run(ctx) {
    const skew = await clockSkewSeconds(ctx.inventory, ctx.clock);
    clockSkewGauge.set(skew);
    const skewed = Math.abs(skew) > MAX_CLOCK_SKEW_SECONDS;
    if (skewed) ctx.log.warn({ skewSeconds: skew }, `the system clock differs from the database's by more than ${MAX_CLOCK_SKEW_SECONDS} s; check NTP`);
    return { skewMs: Math.round(skew * 1000), skewed: skewed ? 1 : 0 };
  },
});

/** Destroys the issuing token's keys of delegated OCSP responders that have expired (see destroyExpiredResponderKeys). */
export const responderKeyCleanupJob = (config: Config): JobDefinition => ({
  name: "responder-key-cleanup",
  schedule: config.scheduler.schedules.responderKeyCleanup,
  async run(ctx) {
    const destroyed = await destroyExpiredResponderKeys(ctx, "scheduler:responder-key-cleanup");
    responderKeysDestroyedTotal.inc(destroyed.length);
    for (const key of destroyed) ctx.log.info({ responder: key.responderId, issuerId: key.issuerId, keyUri: key.keyUri, objects: key.objects }, "expired OCSP responder key destroyed on the token");
    return { destroyed: destroyed.length };
  },
});

export const builtInJobs = (config: Config): JobDefinition[] => [
  renewalJob(config),
  expiryAlertsJob(config),
  issuerHealthJob(config),
  issuerLifecycleJob(config),
  webhookDeliveryJob(config),
  reconcileIntentsJob(config),
  clockCheckJob(config),
  responderKeyCleanupJob(config),
];
