import express, { type Router } from "express";
import { parseCaCertificateFileName, toPem } from "@pki/x509";
import { type CaRuntime, unexpiredIntermediates } from "@pki/authority";
import { registry, runtimeReadiness, sendProblem } from "@pki/http-kit";
import { scrapeMetrics } from "@pki/metrics";
import { refreshStateGauges } from "./metrics.ts";

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
/** Subjects are whatever the ceremony was given: text in the index, never markup. */
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/** The ?hierarchy= of a bundle: "default" when absent, undefined when it is no hierarchy name. */
function hierarchyParameter(value: unknown): string | undefined {
  if (value === undefined) return "default";
  return typeof value === "string" && /^[a-z][a-z0-9-]{0,31}$/.test(value) ? value : undefined;
}

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
  router.get("/ca/intermediates.pem", async (req, res) => {
    const hierarchy = hierarchyParameter(req.query.hierarchy);
    if (hierarchy === undefined) return sendProblem(res, 400, "hierarchy must be a hierarchy name (lower-case letters, digits and dashes)");
    const issuers = await runtime.inventory.issuers.list();
    if (!issuers.some((i) => i.hierarchy === hierarchy)) return sendProblem(res, 404, `no hierarchy '${hierarchy}'`);
    res.type("application/x-pem-file").setHeader("cache-control", "public, max-age=300");
    res.send(
      unexpiredIntermediates(issuers, hierarchy, runtime.clock.now())
        .map((i) => toPem(i.certificateDer))
        .join(""),
    );
  });
  // Where a person looks first: what is here, as links.
  router.get("/ca/", async (_req, res) => {
    const issuers = await runtime.inventory.issuers.list();
    const files: Array<[string, string]> = [
      ["roots.pem", "every trusted root (PEM)"],
      ["chain.pem", "the active intermediate, then its root (PEM; ?hierarchy=NAME for another hierarchy)"],
      ["intermediates.pem", "every unexpired intermediate, also retired and revoked ones (PEM; ?hierarchy=NAME): verify with -untrusted"],
      ...issuers.map((i): [string, string] => [`${i.id}.crt`, `${i.role} ${i.subject} (${i.hierarchy}), DER; ${i.id}.pem for PEM`]),
    ];
    res.type("text/html").setHeader("cache-control", "public, max-age=60");
    res.send(
      `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>CA certificates</title></head><body>\n<h1>CA certificates</h1>\n<ul>\n${files
        .map(([file, what]) => `<li><a href="/ca/${escapeHtml(encodeURIComponent(file))}">${escapeHtml(file)}</a>: ${escapeHtml(what)}</li>`)
        .join("\n")}\n</ul>\n</body></html>\n`,
    );
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
