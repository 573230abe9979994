import type { RequestHandler } from "express";
import { Histogram } from "prom-client";
import { registry } from "@pki/metrics";

export { registry };

const httpDuration = new Histogram({
  name: "pki_http_request_duration_seconds",
  help: "HTTP request latency by route, method and status",
  labelNames: ["listener", "route", "method", "status"] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

/** Times every request under its route pattern (not its URL, which would explode cardinality). */
export function requestTimer(listener: string): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on("finish", () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : req.baseUrl || "unmatched";
      httpDuration.observe({ listener, route, method: req.method, status: String(res.statusCode) }, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };
}
