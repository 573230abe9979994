// The operator tasks besides issuance and inventory, for the console and scripts: the
// scheduler's jobs (status, run one now), CRLs (status, publish now), the health checks
// and operators' admin tokens. Each calls the function its `pki` command calls, so the two
// cannot drift; ceremonies that need the root PIN (pki init, pki crl sign-root) stay CLI-only.
import type { CaRuntime } from "@pki/authority";
import { CrlPublisher } from "@pki/revocation";
import type { CrlMeta, JobRunRecord } from "@pki/db";
import { runDoctor } from "@pki/doctor";
import { createLogger } from "@pki/logger";
import { addOperator, listOperators, removeOperator } from "@pki/policy";
import { builtInJobs, createScheduler, schedulerStatus } from "@pki/jobs";
import { clearSessionCookie } from "./console.ts";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

const DEFAULT_RUNS_SHOWN = 20;

const runBody = (r: JobRunRecord) => ({
  id: String(r.id),
  job: r.job,
  runner: r.runner,
  startedAt: r.startedAt.toISOString(),
  endedAt: r.endedAt?.toISOString() ?? null,
  outcome: r.outcome,
  counts: r.counts,
  error: r.error,
});

const crlBody = (meta: CrlMeta, now: Date) => ({
  number: String(meta.number),
  entries: meta.entries,
  thisUpdate: meta.thisUpdate.toISOString(),
  nextUpdate: meta.nextUpdate.toISOString(),
  ageSeconds: Math.max(0, Math.floor((now.getTime() - meta.thisUpdate.getTime()) / 1000)),
});

function schedulerRoutes(runtime: CaRuntime): RouteDefinition[] {
  const log = createLogger(runtime.config.logLevel, "scheduler");
  return [
    defineRoute({
      method: "get",
      path: "/v1/scheduler",
      operationId: "getSchedulerStatus",
      summary: "Each scheduler job's next due time, lease, failure streak and last run, and the latest runs (pki scheduler status)",
      tags: ["operations"],
      auth: "admin",
      query: S.SchedulerQuery,
      responses: { 200: { description: "the jobs and recent runs", schema: S.SchedulerStatus } },
      problems: [400, 401, 403, 429, 503],
      handle: async (ctx) => {
        const status = await schedulerStatus(
          runtime.inventory,
          builtInJobs(runtime.config).map((j) => j.name),
          ctx.query?.runs ?? DEFAULT_RUNS_SHOWN,
        );
        return {
          status: 200,
          body: {
            jobs: status.jobs.map((j) => ({
              job: j.job,
              nextDueAt: j.nextDueAt?.toISOString() ?? null,
              leaseHolder: j.leaseHolder,
              leaseUntil: j.leaseUntil?.toISOString() ?? null,
              consecutiveFailures: j.consecutiveFailures,
              lastRun: j.lastRun ? runBody(j.lastRun) : null,
            })),
            runs: status.runs.map(runBody),
          },
        };
      },
    }),
    defineRoute({
      method: "post",
      path: "/v1/scheduler/jobs/{job}/run",
      operationId: "runSchedulerJob",
      summary: "Run one scheduler job now, on this API process, under the job's lease (pki scheduler run-once)",
      description: "Answers when the run ends. 200 also when the job itself failed (outcome failed, error says why); 409 when another scheduler holds the job's lease.",
      tags: ["operations"],
      auth: "admin",
      params: S.JobParams,
      responses: { 200: { description: "the run", schema: S.JobRunResult } },
      problems: [400, 401, 403, 409, 429, 503],
      handle: async (ctx) => {
        const runner = createScheduler({ runtime, log, runnerId: `${ctx.caller.actor}:${process.pid}` });
        const result = await runner.runNow(ctx.params.job, { actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
        return { status: 200, body: { job: result.job, outcome: result.outcome ?? "failed", counts: result.counts ?? {}, ...(result.error ? { error: result.error } : {}) } };
      },
    }),
  ];
}

function crlRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/v1/crls",
      operationId: "getCrlStatus",
      summary: "The latest full and delta CRL of each issuer: number, entries, thisUpdate, nextUpdate, age (pki crl status)",
      tags: ["operations"],
      auth: "admin",
      responses: { 200: { description: "per issuer", schema: S.CrlStatus } },
      problems: [401, 403, 429, 503],
      handle: async () => {
        const now = runtime.clock.now();
        const states = await runtime.inventory.crls.states();
        return {
          status: 200,
          body: states.map((s) => ({ issuerId: s.issuerId, full: s.full ? crlBody(s.full, now) : null, delta: s.delta ? crlBody(s.delta, now) : null })),
        };
      },
    }),
    defineRoute({
      method: "post",
      path: "/v1/crls/publish",
      operationId: "publishCrls",
      summary: "Sign and publish a new full and delta CRL now, for one issuer or every one that publishes (pki crl publish)",
      description: "A root's CRL is signed in the root ceremony (pki crl sign-root), not here.",
      tags: ["operations"],
      auth: "admin",
      body: S.CrlPublishBody,
      responses: { 200: { description: "what was published", schema: S.CrlPublished } },
      problems: [400, 401, 403, 404, 413, 415, 429, 503],
      handle: async (ctx) => {
        const publisher = new CrlPublisher({ inventory: runtime.inventory, keyring: runtime.keyring, config: runtime.config, clock: runtime.clock });
        const published = await publisher.publishNow(ctx.body?.issuerId, { actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
        const now = runtime.clock.now();
        return { status: 200, body: { published: published.map((p) => ({ issuerId: p.issuerId, full: crlBody(p.full, now), delta: crlBody(p.delta, now) })) } };
      },
    }),
  ];
}

const doctorRoute = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/doctor",
    operationId: "runDoctor",
    summary: "The health checks of pki doctor, run now in this API process: token keys sign, database and clock, intermediates and roots, CRLs, scheduler",
    tags: ["operations"],
    auth: "admin",
    responses: { 200: { description: "each check: ok, warn or fail, with what to do", schema: S.DoctorReport } },
    problems: [401, 403, 429, 503],
    handle: async () => ({ status: 200, body: { generatedAt: runtime.clock.now().toISOString(), checks: await runDoctor(runtime) } }),
  });

function operatorRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/v1/admins",
      operationId: "listOperators",
      summary: "Every operator admin token ever made: name, created, revoked; never the tokens (pki admin list)",
      tags: ["operations"],
      auth: "admin",
      responses: { 200: { description: "oldest first", schema: S.Operator.array() } },
      problems: [401, 403, 429, 503],
      handle: async () => ({
        status: 200,
        body: (await listOperators(runtime.inventory)).map((a) => ({ name: a.name, createdAt: a.createdAt.toISOString(), revokedAt: a.revokedAt?.toISOString() ?? null })),
      }),
    }),
    defineRoute({
      method: "post",
      path: "/v1/admins",
      operationId: "addOperator",
      summary: "Create an operator's admin token (pki admin add); the answer is the only time the token is shown",
      tags: ["operations"],
      auth: "admin",
      body: S.OperatorBody,
      bodyRequired: true,
      responses: { 201: { description: "the operator and their token", schema: S.OperatorCreated } },
      problems: [400, 401, 403, 409, 413, 415, 429, 503],
      handle: async (ctx) => {
        const created = await addOperator(runtime.inventory, ctx.body.name, { actor: ctx.caller.actor });
        ctx.res.setHeader("cache-control", "no-store");
        return { status: 201, body: created };
      },
    }),
    defineRoute({
      method: "delete",
      path: "/v1/admins/{name}",
      operationId: "removeOperator",
      summary: "Revoke an operator's admin token; their console sessions end at once (pki admin remove)",
      tags: ["operations"],
      auth: "admin",
      params: S.OperatorParams,
      responses: { 200: { description: "removed", schema: S.OperatorRemoved } },
      problems: [400, 401, 403, 404, 429, 503],
      handle: async (ctx) => {
        const removed = await removeOperator(runtime.inventory, ctx.params.name, runtime.clock.now(), { actor: ctx.caller.actor });
        // Removing oneself ends one's own session too: say so to the browser as well.
        if (ctx.caller.kind === "admin" && ctx.caller.session?.operator === ctx.params.name) clearSessionCookie(ctx.res);
        return { status: 200, body: { removed: ctx.params.name, sessionsEnded: removed.sessionsEnded } };
      },
    }),
  ];
}

export function operationRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [...schedulerRoutes(runtime), ...crlRoutes(runtime), doctorRoute(runtime), ...operatorRoutes(runtime)];
}
