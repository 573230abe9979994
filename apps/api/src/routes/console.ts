// Operator console sessions: an admin token exchanged once for a cookie the browser holds
// (HttpOnly, so page scripts never see it) and a CSRF token the page sends back on every
// state change. The session lives in the database, so every API replica knows it.
import { randomBytes } from "node:crypto";
import type { Response } from "express";
import { z } from "zod";
import { CaError } from "@pki/x509";
import { inventoryFailure, type CaRuntime } from "@pki/authority";
import { SESSION_ABSOLUTE_SECONDS, SESSION_COOKIE, SESSIONS_PER_OPERATOR, sessionCaller, sessionCookie, sessionHash, type ConsoleSession } from "../auth.ts";
import { defineRoute, type RouteDefinition } from "../route.ts";

const SessionBody = z.strictObject({
  token: z.string({ error: "is required: an admin token" }).min(1, "is empty").max(512, "is longer than any admin token"),
});

const SessionView = z.object({
  operator: z.string(),
  csrfToken: z.string().meta({ description: "send as X-CSRF-Token on every request other than GET/HEAD" }),
  idleTimeoutSeconds: z.number().int(),
});

function setCookie(res: Response, value: string, maxAgeSeconds: number): void {
  // the answer carries the CSRF token: no cache may keep it
  res.setHeader("cache-control", "no-store");
  res.setHeader("set-cookie", `${SESSION_COOKIE}=${value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`);
}

/** Seconds the browser should keep the cookie: the idle timeout, never past the absolute expiry. */
const cookieLifetime = (runtime: CaRuntime, expiresAt: Date) => Math.min(runtime.config.api.consoleIdleSeconds, (expiresAt.getTime() - runtime.clock.now().getTime()) / 1000);

/** Each answer to a session moves the browser's cookie expiry along with the server's idle timer. */
export function refreshSessionCookie(res: Response, session: ConsoleSession, runtime: CaRuntime): void {
  setCookie(res, session.cookieValue, cookieLifetime(runtime, session.expiresAt));
}

/** Tells the browser to drop the session cookie (its session has ended on the server). */
export function clearSessionCookie(res: Response): void {
  setCookie(res, "", 0);
}

const view = (runtime: CaRuntime, session: { operator: string; csrfToken: string }) => ({
  operator: session.operator,
  csrfToken: session.csrfToken,
  idleTimeoutSeconds: runtime.config.api.consoleIdleSeconds,
});

export function consoleRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/v1/console/session",
      operationId: "createConsoleSession",
      summary: "Log in to the operator console with an admin token",
      description: `Sets the ${SESSION_COOKIE} cookie (HttpOnly, Secure, SameSite=Strict). The session ends after PKI_CONSOLE_IDLE_SECONDS without a request, 12 h after login, at logout, or when the operator is removed. Failed logins count against the source's authentication failure limit.`,
      tags: ["console"],
      auth: "none",
      body: SessionBody,
      bodyRequired: true,
      responses: { 201: { description: "logged in", schema: SessionView } },
      problems: [400, 401, 413, 415, 429, 503],
      handle: async (ctx) => {
        const operator = await ctx.checkCredential(`bearer Bearer ${ctx.body.token}`, async () => {
          const name = await runtime.inventory.admins.verify(ctx.body.token).catch((error: unknown) => {
            throw inventoryFailure(error, "cannot check the token");
          });
          if (!name) throw new CaError("unauthorized", "the token is not a live admin token (it may have been removed)");
          return name;
        });
        const cookieValue = randomBytes(32).toString("base64url");
        const csrfToken = randomBytes(32).toString("base64url");
        const now = runtime.clock.now();
        const expiresAt = new Date(now.getTime() + SESSION_ABSOLUTE_SECONDS * 1000);
        await runtime.inventory.consoleSessions.create(
          { idHash: sessionHash(cookieValue), operator, csrfToken, now, expiresAt },
          { idleSeconds: runtime.config.api.consoleIdleSeconds, maxPerOperator: SESSIONS_PER_OPERATOR },
        );
        await runtime.inventory.audit.record({ actor: `admin:${operator}`, action: "console.login", sourceIp: ctx.sourceIp });
        setCookie(ctx.res, cookieValue, cookieLifetime(runtime, expiresAt));
        return { status: 201, body: view(runtime, { operator, csrfToken }) };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/console/session",
      operationId: "getConsoleSession",
      summary: "The console session the cookie names (operator and CSRF token)",
      tags: ["console"],
      auth: "none",
      responses: { 200: { description: "the live session", schema: SessionView } },
      problems: [401, 429, 503],
      handle: async (ctx) => {
        // The console asks this on every page load: no cookie at all is an answer ("log in"),
        // not a failed credential; a cookie that names no live session counts as one.
        const presented = sessionCookie(ctx.req);
        const caller = presented
          ? await ctx.checkCredential(`session ${presented}`, () => sessionCaller(ctx.req, runtime))
          : await sessionCaller(ctx.req, runtime).catch(async (error: unknown) => {
              throw presented !== undefined && error instanceof CaError && error.kind === "unauthorized" ? await ctx.authFailure(error) : error;
            });
        refreshSessionCookie(ctx.res, caller.session, runtime);
        return { status: 200, body: view(runtime, caller.session) };
      },
    }),
    defineRoute({
      method: "delete",
      path: "/v1/console/session",
      operationId: "deleteConsoleSession",
      summary: "Log out: the session ends and the cookie is cleared (needs X-CSRF-Token)",
      tags: ["console"],
      auth: "admin",
      responses: { 204: { description: "logged out", schema: z.null() } },
      problems: [401, 403, 429, 503],
      handle: async (ctx) => {
        if (ctx.caller.kind !== "admin" || !ctx.caller.session) throw new CaError("bad_request", "this request has no console session to end (it authenticated with a bearer token)");
        await runtime.inventory.consoleSessions.remove(ctx.caller.session.idHash);
        await runtime.inventory.audit.record({ actor: ctx.caller.actor, action: "console.logout", sourceIp: ctx.sourceIp });
        setCookie(ctx.res, "", 0);
        return { status: 204, body: undefined };
      },
    }),
  ];
}
