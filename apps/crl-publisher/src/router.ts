import express, { type Router } from "express";
import { sendProblem } from "@pki/http-kit";
import { parseCrlFileName } from "@pki/x509";
import type { CrlCache } from "./cache.ts";

/** `GET /crl/{issuerId}.crl` and `/crl/{issuerId}-delta.crl`, with RFC 5019-style caching headers. */
export function crlRouter(cache: CrlCache, options: { maxAgeSeconds: number; now?: () => Date }): Router {
  const router = express.Router();
  router.get("/crl/:file", (req, res) => {
    const name = parseCrlFileName(req.params.file);
    const crl = name ? cache.get(name.issuerId, name.kind) : undefined;
    if (!crl) return sendProblem(res, 404, `no CRL '${req.params.file}' is published here`);
    const now = (options.now?.() ?? new Date()).getTime();
    // Cacheable until nextUpdate at the latest, and capped so a revocation published
    // before then reaches caches within the cap.
    const maxAge = Math.max(0, Math.min(options.maxAgeSeconds, Math.floor((crl.meta.nextUpdate.getTime() - now) / 1000)));
    res.setHeader("cache-control", `public, max-age=${maxAge}, no-transform, must-revalidate`);
    res.setHeader("last-modified", crl.meta.thisUpdate.toUTCString());
    res.setHeader("expires", crl.meta.nextUpdate.toUTCString());
    res.setHeader("etag", crl.meta.etag);
    if (req.headers["if-none-match"] === crl.meta.etag) return void res.status(304).end();
    res.type("application/pkix-crl").send(crl.der);
  });
  return router;
}
