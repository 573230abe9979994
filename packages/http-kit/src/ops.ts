import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Clock } from "@pki/base";
import { registry, scrapeMetrics } from "@pki/metrics";
import { listen } from "./listen.ts";

// Also the entry `@pki/http-kit/ops`: processes that serve only these endpoints (the API
// cluster primary) load it without the CA's packages.
export { closeGracefully } from "./listen.ts";

export interface Readiness {
  ok: boolean;
  checks: Record<string, string>;
}

/** What readiness reads of a signing process's runtime (the authority's CaRuntime has it). */
export interface SigningRuntime {
  inventory: { ping(): Promise<unknown> };
  keyring: { active(): { signer: { sign(data: Buffer): Promise<unknown> }; facts: { notAfter: Date } } };
  clock: Clock;
}

/**
 * Readiness of a process that signs: the database answers, the token signs, the active
 * intermediate is in date. Cached for a second so a load balancer polling it cannot turn
 * it into load.
 */
export function runtimeReadiness(runtime: SigningRuntime): () => Promise<Readiness> {
  return cachedReadiness(async () => {
    const checks: Record<string, string> = {};
    await runtime.inventory.ping().then(
      () => (checks.database = "ok"),
      () => (checks.database = "unavailable"),
    );
    try {
      const active = runtime.keyring.active();
      await active.signer.sign(Buffer.from("readiness probe"));
      checks.token = "ok";
      checks.activeIssuer = active.facts.notAfter > runtime.clock.now() ? "ok" : `expired at ${active.facts.notAfter.toISOString()}`;
    } catch (error) {
      checks.token = `unavailable: ${(error as Error).message}`;
    }
    return checks;
  });
}

export function cachedReadiness(check: () => Promise<Record<string, string>>): () => Promise<Readiness> {
  let cached: { at: number; result: Readiness } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < 1000) return cached.result;
    const checks = await check();
    const result = { ok: Object.values(checks).every((v) => v === "ok"), checks };
    cached = { at: Date.now(), result };
    return result;
  };
}

/**
 * /healthz, /readyz and /metrics for a raw node:http handler. Returns false for any other
 * path so the caller can serve it. Every role answers these on PKI_HTTP_PORT, which is
 * what the compose healthchecks and Prometheus use.
 */
export function opsHandler(ready: () => Promise<Readiness>): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = req.url?.split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return true;
    }
    if (path === "/readyz") {
      void ready().then((r) => res.writeHead(r.ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(r)));
      return true;
    }
    if (path === "/metrics") {
      void scrapeMetrics().then((text) => res.writeHead(200, { "content-type": registry.contentType }).end(text));
      return true;
    }
    return false;
  };
}

/** A plain-HTTP listener with only the operational endpoints, for roles that serve nothing else on it. */
export async function startOpsListener(http: { bind: string; port: number }, ready: () => Promise<Readiness>): Promise<Server> {
  const ops = opsHandler(ready);
  const server = createServer((req, res) => {
    if (!ops(req, res))
      res
        .writeHead(404, { "content-type": "application/problem+json" })
        .end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, detail: `no such resource: ${req.method} ${req.url}` }));
  });
  await listen(server, http.port, http.bind);
  return server;
}
