import { registry } from "@pki/metrics";
import { Counter, Histogram } from "prom-client";

export const acmeOrders = new Counter({
  name: "pki_acme_orders_total",
  help: "ACME orders entering a state (pending when created, valid when issued, invalid when refused), by provisioner",
  labelNames: ["provisioner", "state"] as const,
  registers: [registry],
});

export const acmeValidations = new Histogram({
  name: "pki_acme_validation_seconds",
  help: "ACME challenge validation time by challenge type and outcome (valid, invalid); the count of invalid is the failures",
  labelNames: ["type", "outcome"] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});
