import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type RequestHandler, type Router } from "express";
import { presentedIssuerStatus, type CaRuntime } from "@pki/ca-core";

const here = path.dirname(fileURLToPath(import.meta.url));
// A Map, so a path such as /dashboard/__proto__ or /dashboard/constructor names nothing.
const assets = new Map([
  ["index.html", { type: "text/html; charset=utf-8", body: readFileSync(path.join(here, "index.html")) }],
  ["app.js", { type: "text/javascript; charset=utf-8", body: readFileSync(path.join(here, "app.js")) }],
  ["style.css", { type: "text/css; charset=utf-8", body: readFileSync(path.join(here, "style.css")) }],
]);

// The page is static and holds no data; everything it shows comes from /dashboard/api/*,
// which requires the admin token (kept in the browser tab's sessionStorage only). It is
// served by the HTTPS issuing API listener only, never the plain-HTTP public one, since
// the token crosses the wire; `requireAdmin` is the API's own check and failure limiter.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function dashboardRouter(runtime: CaRuntime, requireAdmin: RequestHandler): Router {
  const router = express.Router();

  router.get(["/dashboard", "/dashboard/"], (_req, res) => sendAsset(res, "index.html"));
  router.get("/dashboard/:asset", (req, res, next) => (assets.has(req.params.asset) ? sendAsset(res, req.params.asset) : next()));

  router.get("/dashboard/api/summary", requireAdmin, async (_req, res) => {
    const now = runtime.clock.now();
    const [issuers, counts, expiry, audit] = await Promise.all([
      runtime.inventory.issuers.list(),
      runtime.inventory.certificates.countsByState(now),
      runtime.inventory.certificates.expiryByDay(now, 30),
      runtime.inventory.audit.recent(25),
    ]);
    res.setHeader("cache-control", "no-store");
    res.json({
      generatedAt: now.toISOString(),
      issuers: issuers.map((i) => ({
        id: i.id,
        hierarchy: i.hierarchy,
        role: i.role,
        status: presentedIssuerStatus(i),
        parentId: i.parentId,
        subject: i.subject,
        notAfter: i.notAfter.toISOString(),
        keyAlgorithm: i.keyAlgorithm,
      })),
      counts,
      expiry,
      audit: audit.map((a) => ({ at: a.at.toISOString(), actor: a.actor, action: a.action, target: a.target, outcome: a.outcome, sourceIp: a.sourceIp })),
    });
  });
  return router;

  function sendAsset(res: express.Response, name: string) {
    const asset = assets.get(name)!;
    res.setHeader("content-security-policy", CSP);
    res.setHeader("cache-control", "no-cache");
    res.type(asset.type).send(asset.body);
  }
}
