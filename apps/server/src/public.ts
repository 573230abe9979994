import express, { type Router } from "express";
import { parseCaCertificateFileName, toPem } from "@pki/x509";
import type { CaRuntime } from "@pki/authority";
import { registry, runtimeReadiness, sendProblem } from "@pki/http-kit";
import { scrapeMetrics } from "@pki/metrics";
import { refreshStateGauges } from "./metrics.ts";

/** Health, metrics and the CA certificates relying parties fetch (caIssuers, bundles). */
export function caDocumentsRouter(runtime: CaRuntime): Router {
  const router = express.Router();
  const ready = runtimeReadiness(runtime);

  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const result = await ready();
    res.status(result.ok ? 200 : 503).json(result);
  });
  router.get("/metrics", async (_req, res) => {
    await refreshStateGauges(runtime).catch(() => {}); // a database outage must not hide the other metrics
    // with API workers, theirs are summed in (counters and histograms across processes)
    res.type(registry.contentType).send(await scrapeMetrics());
  });
  router.get("/ca/roots.pem", async (_req, res) => {
    const roots = (await runtime.inventory.issuers.list()).filter((i) => i.role === "root" && i.status !== "expired");
    res.type("application/x-pem-file").setHeader("cache-control", "public, max-age=3600");
    res.send(roots.map((r) => toPem(r.certificateDer)).join(""));
  });
  router.get("/ca/chain.pem", (req, res) => {
    const hierarchy = typeof req.query.hierarchy === "string" ? req.query.hierarchy : "default";
    let chain: Buffer[];
    try {
      chain = runtime.keyring.active(hierarchy).chain;
    } catch {
      return sendProblem(res, 404, `no active intermediate in hierarchy '${hierarchy}'`);
    }
    res.type("application/x-pem-file").setHeader("cache-control", "public, max-age=300");
    res.send(chain.map((c) => toPem(c)).join(""));
  });
  router.get("/ca/:file", async (req, res) => {
    const name = parseCaCertificateFileName(req.params.file);
    const issuer = name ? await runtime.inventory.issuers.get(name.issuerId) : undefined;
    if (!name || !issuer) return sendProblem(res, 404, `no CA certificate '${req.params.file}'`);
    res.setHeader("cache-control", "public, max-age=3600");
    if (name.format === "pem") res.type("application/x-pem-file").send(toPem(issuer.certificateDer));
    else res.type("application/pkix-cert").send(issuer.certificateDer);
  });
  return router;
}
