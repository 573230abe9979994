import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Router } from "express";
import { presentedIssuerStatus, type CaRuntime } from "@pki/ca-core";
import { sendProblem } from "@pki/http-kit";

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = {
  "index.html": { type: "text/html; charset=utf-8", body: readFileSync(path.join(here, "index.html")) },
  "app.js": { type: "text/javascript; charset=utf-8", body: readFileSync(path.join(here, "app.js")) },
  "style.css": { type: "text/css; charset=utf-8", body: readFileSync(path.join(here, "style.css")) },
};

// The page is static and holds no data; everything it shows comes from /dashboard/api/*,
// which requires the admin token (kept in the browser tab's sessionStorage only).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function dashboardRouter(runtime: CaRuntime): Router {
  const router = express.Router();

  router.get(["/dashboard", "/dashboard/"], (_req, res) => sendAsset(res, "index.html"));
  router.get("/dashboard/:asset", (req, res, next) => (req.params.asset in assets ? sendAsset(res, req.params.asset as keyof typeof assets) : next()));

  router.get("/dashboard/api/summary", async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const admin = token ? await runtime.inventory.admins.verify(token) : undefined;
    if (!admin) return sendProblem(res, 401, "the dashboard needs an admin token (Authorization: Bearer …)");
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
      issuers: issuers.map((i) => ({ id: i.id, hierarchy: i.hierarchy, role: i.role, status: presentedIssuerStatus(i), parentId: i.parentId, subject: i.subject, notAfter: i.notAfter.toISOString(), keyAlgorithm: i.keyAlgorithm })),
      counts,
      expiry,
      audit: audit.map((a) => ({ at: a.at.toISOString(), actor: a.actor, action: a.action, target: a.target, outcome: a.outcome, sourceIp: a.sourceIp })),
    });
  });
  return router;

  function sendAsset(res: express.Response, name: keyof typeof assets) {
    res.setHeader("content-security-policy", CSP);
    res.setHeader("cache-control", "no-cache");
    res.type(assets[name].type).send(assets[name].body);
  }
}
