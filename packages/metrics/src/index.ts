// The process's Prometheus registry and the CA's own metrics. Every role in a process
// registers here, so one /metrics scrape shows them all.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const certificatesIssued = new Counter({
  name: "pki_certificates_issued_total",
  help: "Issuance attempts by profile, issuer and outcome (issued, refused, failed)",
  labelNames: ["profile", "issuer", "outcome"] as const,
  registers: [registry],
});

export const certificatesRevoked = new Counter({
  name: "pki_certificates_revoked_total",
  help: "Revocations by issuer and reason",
  labelNames: ["issuer", "reason"] as const,
  registers: [registry],
});

export const tokenSignSeconds = new Histogram({
  name: "pki_token_sign_seconds",
  help: "Time the PKCS#11 token takes to sign, by key",
  labelNames: ["key"] as const,
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
  registers: [registry],
});

export const issuerSecondsToExpiry = new Gauge({
  name: "pki_issuer_seconds_until_expiry",
  help: "Seconds until each issuer certificate's notAfter",
  labelNames: ["issuer", "role", "status"] as const,
  // several processes (API workers) may report it: a scrape shows the soonest
  aggregator: "min",
  registers: [registry],
});

// Labelled by rank only: metrics leave the process for dashboards and third-party
// monitoring, so they name no certificate (look serials up with `pki certs list`).
export const leafSecondsToExpiry = new Gauge({
  name: "pki_leaf_soonest_expiry_seconds",
  help: "Seconds until the soonest-expiring valid leaf certificates expire (rank 1 = soonest)",
  labelNames: ["rank"] as const,
  // several processes (API workers) may report it: a scrape shows the soonest
  aggregator: "min",
  registers: [registry],
});

export const databasePool = new Gauge({
  name: "pki_database_pool_connections",
  help: "Database pool connections by state",
  labelNames: ["state"] as const,
  registers: [registry],
});

export const tokenSessions = new Gauge({
  name: "pki_token_sessions",
  help: "PKCS#11 sessions in the signing pool by state",
  labelNames: ["state"] as const,
  registers: [registry],
});

export { answerMetricsRequests, scrapeMetrics } from "./cluster.ts";
