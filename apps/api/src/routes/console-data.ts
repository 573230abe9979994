// What the operator console shows besides the inventory: the overview counts and the
// audit log.
import { CaError } from "@pki/x509";
import { INTERNAL_CERTIFICATE_MARKS, inventoryFailure, type CaRuntime } from "@pki/authority";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

/** Failed renewals shown on the overview. */
const FAILED_RENEWALS_SHOWN = 20;
/** The actor the scheduler's renewal job issues as. */
const RENEWAL_ACTOR = "scheduler:renewal";

const overview = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/overview",
    operationId: "getOverview",
    summary: "Counts for the console: services' and the CA's own certificates by state, what expires soon, auto-renewal",
    description:
      "internal = the CA's own certificates (OCSP responder, API listener), counted apart from services'. expiring, expiryByDay and autoRenew.enabled count services' valid certificates only. failedRenewals are the latest renewals the scheduler could not sign (from the audit log).",
    tags: ["inventory"],
    auth: "admin",
    responses: { 200: { description: "the overview", schema: S.Overview } },
    problems: [401, 403, 429, 503],
    handle: async () => {
      const now = runtime.clock.now();
      const counts = await runtime.inventory.certificates.overview(now, INTERNAL_CERTIFICATE_MARKS).catch((error: Error) => {
        throw inventoryFailure(error, "no overview");
      });
      const failures = await runtime.inventory.audit.query({ actor: RENEWAL_ACTOR, outcome: "error", limit: FAILED_RENEWALS_SHOWN });
      const failedRenewals = [];
      for (const event of failures.items) {
        if (!event.target) continue;
        const certificate = await runtime.inventory.certificates.get(event.target);
        const details = (event.details ?? {}) as { reason?: unknown };
        failedRenewals.push({
          serial: certificate?.predecessorSerial ?? event.target,
          subject: certificate?.subject ?? "",
          at: event.at.toISOString(),
          reason: typeof details.reason === "string" ? details.reason : event.action,
        });
      }
      return {
        status: 200,
        body: {
          generatedAt: now.toISOString(),
          services: counts.services,
          internal: counts.internal,
          expiring: counts.expiring,
          expiryByDay: counts.expiryByDay,
          autoRenew: { enabled: counts.autoRenewEnabled, failedRenewals },
        },
      };
    },
  });

const audit = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/audit",
    operationId: "listAuditEvents",
    summary: "The audit log, newest first",
    description:
      "actor and action are prefix matches (actor=admin: gives every operator, action=issuer. every issuer action); target is exact. since is inclusive, until exclusive. Keyset-paginated on the event id: pass nextCursor as cursor.",
    tags: ["audit"],
    auth: "admin",
    query: S.AuditQuery,
    responses: { 200: { description: "one page", schema: S.AuditPage } },
    problems: [400, 401, 403, 429, 503],
    handle: async (ctx) => {
      const q = ctx.query;
      const page = await runtime.inventory.audit.query({ ...q, since: q.since ? new Date(q.since) : undefined, until: q.until ? new Date(q.until) : undefined }).catch((error: Error) => {
        if (error instanceof RangeError) throw new CaError("bad_request", `query cursor: ${error.message}`, { cause: error });
        throw inventoryFailure(error, "nothing was listed");
      });
      return {
        status: 200,
        body: {
          items: page.items.map((e) => ({
            id: String(e.id),
            at: e.at.toISOString(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            sourceIp: e.sourceIp,
            details: e.details ?? null,
          })),
          nextCursor: page.nextCursor,
        },
      };
    },
  });

export function consoleDataRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [overview(runtime), audit(runtime)];
}
