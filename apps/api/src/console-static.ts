// The operator console: a static page and its modules, no build step and nothing from
// outside (the CA runs air-gapped). It holds no data; everything it shows comes from the
// API under the operator's session cookie, so it is served on this HTTPS listener only.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Router } from "express";

const here = path.join(path.dirname(fileURLToPath(import.meta.url)), "console");
const TYPES = new Map([
  [".html", "text/html; charset=utf-8"],
  [".js", "text/javascript; charset=utf-8"],
  [".css", "text/css; charset=utf-8"],
]);
export const CONSOLE_FILES = ["index.html", "style.css", "app.js", "api.js", "dom.js", "pages.js", "issuers.js", "provisioners.js", "operations.js"];

// A Map, so a path such as /console/__proto__ or /console/constructor names nothing.
const assets = new Map(CONSOLE_FILES.map((name) => [name, { type: TYPES.get(path.extname(name))!, body: readFileSync(path.join(here, name)) }]));

// No inline script or style; data only from this origin; downloads are built as blob: URLs
// (an <a download> to a blob: is a navigation, which CSP leaves alone, but img-src lets a
// future preview show one).
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function consoleRouter(): Router {
  const router = express.Router({ strict: true });
  // The old dashboard's addresses lead here, keeping bookmarks working.
  router.get(["/dashboard", "/dashboard/", "/dashboard/*rest"], (_req, res) => res.redirect(308, "/console/"));
  router.get("/console", (_req, res) => res.redirect(308, "/console/"));
  router.get("/console/", (_req, res) => send(res, "index.html"));
  router.get("/console/:asset", (req, res, next) => (assets.has(req.params.asset) ? send(res, req.params.asset) : next()));
  return router;

  function send(res: express.Response, name: string) {
    const asset = assets.get(name)!;
    res.setHeader("content-security-policy", CONSOLE_CSP);
    res.setHeader("cache-control", "no-cache");
    res.type(asset.type).send(asset.body);
  }
}
