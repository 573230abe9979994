// Scheduler metrics, on the process's shared registry (the one /metrics serves).
import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "@pki/metrics";

export const jobRunsTotal = new Counter({
  name: "pki_scheduler_job_runs_total",
  help: "Scheduler job runs by job and outcome (ok, failed) on this replica",
  labelNames: ["job", "outcome"] as const,
  registers: [registry],
});

export const jobDurationSeconds = new Histogram({
  name: "pki_scheduler_job_duration_seconds",
  help: "Scheduler job run duration by job",
  labelNames: ["job"] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
  registers: [registry],
});

export const jobLastSuccess = new Gauge({
  name: "pki_scheduler_job_last_success_timestamp_seconds",
  help: "When each job last succeeded on this replica (Unix time)",
  labelNames: ["job"] as const,
  registers: [registry],
});

export const alertsSentTotal = new Counter({
  name: "pki_expiry_alerts_sent_total",
  help: "Alerts sent, by subject kind (certificate, issuer) and alert (expiry-7d, issuer-health, …)",
  labelNames: ["kind", "alert"] as const,
  registers: [registry],
});

export const renewalsTotal = new Counter({
  name: "pki_auto_renewals_total",
  help: "Automatic renewals by outcome (renewed, failed, skipped)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

export const webhookDeliveriesTotal = new Counter({
  name: "pki_webhook_deliveries_total",
  help: "Webhook delivery attempts by outcome (delivered, failed)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

export const webhookOutboxPending = new Gauge({
  name: "pki_webhook_outbox_pending",
  help: "Webhook events not yet accepted by the receiver",
  registers: [registry],
});

export const clockSkewSeconds = new Gauge({
  name: "pki_clock_skew_seconds",
  help: "This machine's clock minus the database server's, in seconds, at the last clock-check run (positive: ahead)",
  registers: [registry],
});

export const intentsClosedTotal = new Counter({
  name: "pki_reconciled_intents_total",
  help: "Issuance intents left pending by a crash or outage and closed as failed by reconcile-intents",
  registers: [registry],
});

export const responderKeysDestroyedTotal = new Counter({
  name: "pki_ocsp_responder_keys_destroyed_total",
  help: "Token keys of expired delegated OCSP responder certificates destroyed by responder-key-cleanup",
  registers: [registry],
});
