// The express application: the route table bound to express, each request going
// authenticate → validate → handler (authorize → build → policy → lint → record → sign →
// store inside the CA core) → respond, and every failure as problem+json.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { CaError, MAX_CSR_BYTES } from "@pki/x509";
import type { CaRuntime } from "@pki/authority";
import { problemHandler, problemStatus, registry, requestLogger, requestTimer, securityHeaders, sendProblem } from "@pki/http-kit";
import { Counter } from "prom-client";
import type { Logger } from "@pki/logger";
import { boundAuditText, withAuditSource } from "@pki/db";
import { type AcmeProvisionerCache, acmeRouter } from "@pki/acme";
import { type TokenCache, authenticate, authenticateCounted } from "./auth.ts";
import { AuthFailureLimiter, type FailureCounter, type PacingOptions } from "./failure-limiter.ts";
import { CredentialGate, TooManyFailures } from "./credential-gate.ts";
import { consoleRouter } from "./console-static.ts";
import { consoleRoutes, refreshSessionCookie } from "./routes/console.ts";
import { consoleDataRoutes } from "./routes/console-data.ts";
import { openApiDocument } from "./openapi.ts";
import { auditActionOf, requestTarget } from "./audit-actions.ts";
import { expressPath, parseOrThrow, type RouteDefinition } from "./route.ts";
import { type IssuingLane, withIssuingLane } from "./issuing-lane.ts";
import { certificateRoutes } from "./routes/certificates.ts";
import { issuerRoutes } from "./routes/issuers.ts";
import { provisionerRoutes } from "./routes/provisioners.ts";
import { operationRoutes } from "./routes/operations.ts";

export const MAX_JSON_BYTES = 128 * 1024;

/** The route issuance traffic hits, answered past express's router. */
const ISSUING_OPERATION = "issueCertificate";

// On the process's shared registry, so the public listener's /metrics shows them.
const answered = new Counter({
  name: "pki_api_operations_total",
  help: "issuing API operations by route, caller kind and outcome (ok or the HTTP status of the refusal)",
  labelNames: ["operation", "caller", "outcome"] as const,
  registers: [registry],
});

export function apiRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [...consoleRoutes(runtime), ...consoleDataRoutes(runtime), ...issuerRoutes(runtime), ...provisionerRoutes(runtime), ...certificateRoutes(runtime), ...operationRoutes(runtime)];
}

export interface ApiAppOptions {
  authFailureLimit?: number;
  /** how a source past the limit is paced (tests shorten it); default AuthFailureLimiter's */
  authFailurePacing?: PacingOptions;
  /** where failed authentications are counted (an API worker: its primary); default this process */
  authFailures?: FailureCounter;
  /** verified bearer tokens, kept until a credential changes (startApi makes one and closes it) */
  tokens?: TokenCache;
  /** ACME provisioners, kept until a credential or ACME setting changes (startApi makes one and closes it) */
  acmeProvisioners?: AcmeProvisionerCache;
  /** told when an ACME challenge waits for validation (the keyless validator child) */
  acmeValidation?: { wake(): void };
}

/** The source address as the socket sees it; the API is not meant to sit behind a proxy that terminates TLS, since that would hide client certificates. */
const sourceIpOf = (req: Request) => req.socket.remoteAddress ?? "unknown";

const hasBody = (req: Request) => (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") || req.headers["transfer-encoding"] !== undefined;

/** Only the content types a route accepts; anything else is 415 rather than a confusing 400. */
function requireContentType(route: RouteDefinition): RequestHandler {
  const accepted = route.acceptsPkcs10 ? ["application/json", "application/pkcs10"] : ["application/json"];
  return (req, _res, next) => {
    if (!hasBody(req)) return next();
    if (!route.body) return next(new CaError("bad_request", `${route.method.toUpperCase()} ${route.path} takes no request body`));
    if (!req.is(accepted))
      return next(Object.assign(new Error(`send the body as ${accepted.join(" or ")}, not ${req.headers["content-type"] ?? "an unlabelled body"}`), { status: 415, expose: true }));
    next();
  };
}

function bindRoute(route: RouteDefinition, runtime: CaRuntime, limiter: FailureCounter, gate: CredentialGate, tokens: TokenCache | undefined, log: Logger): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const sourceIp = sourceIpOf(req);
    let caller: Awaited<ReturnType<typeof authenticate>> | undefined;
    let auditTarget: string | undefined;
    try {
      caller = route.auth === "none" ? await authenticate(req, runtime, "none") : await authenticateCounted(req, runtime, route.auth, limiter, gate, sourceIp, tokens);
      // Routes that also take DER CSRs read their own body and query (the shape depends on the content type).
      const ownInput = route.acceptsPkcs10;
      if (route.bodyRequired && !hasBody(req)) {
        throw new CaError(
          "bad_request",
          `${route.method.toUpperCase()} ${route.path} needs a request body (Content-Type: ${route.acceptsPkcs10 ? "application/json, or the DER CSR as application/pkcs10" : "application/json"})`,
        );
      }
      const params = parseOrThrow(route.params, req.params, "path");
      const query = ownInput ? undefined : parseOrThrow(route.query ?? emptyQuery, req.query, "query");
      const body = ownInput ? undefined : route.body && (hasBody(req) || route.bodyRequired) ? parseOrThrow(route.body, req.body ?? (route.bodyRequired ? undefined : {}), "body") : undefined;
      const authFailure = async (error: CaError): Promise<Error> => {
        const wait = await limiter.recordFailure(sourceIp);
        return wait === undefined ? error : new TooManyFailures(sourceIp, wait, { cause: error });
      };
      const checkCredential = <T>(secret: string, verify: () => Promise<T>) => gate.check(sourceIp, secret, verify);
      const noteAuditTarget = (target: string) => {
        auditTarget = target;
      };
      const ctx = { req, res, params, query, body, caller, sourceIp, authFailure, checkCredential, noteAuditTarget };
      const result = await withAuditSource(sourceIp, () => route.handle(ctx));
      answered.inc({ operation: route.operationId, caller: caller.kind, outcome: "ok" });
      if (caller.kind === "admin" && caller.session && !res.headersSent && !res.hasHeader("set-cookie")) refreshSessionCookie(res, caller.session, runtime);
      if (result.status === 204) res.status(204).end();
      else res.status(result.status).json(result.body);
    } catch (error) {
      if (error instanceof TooManyFailures) {
        answered.inc({ operation: route.operationId, caller: "-", outcome: "429" });
        return sendTooMany(res, error);
      }
      if (error instanceof CaError && error.kind === "unauthorized") {
        log.warn({ audit: "denied", route: `${route.method.toUpperCase()} ${route.path}`, sourceIp, reason: boundAuditText(error.message) }, "authentication failed");
      }
      answered.inc({ operation: route.operationId, caller: "-", outcome: String(problemStatus(error)) });
      if (error instanceof CaError && (error.kind === "forbidden" || error.kind === "bad_request" || error.kind === "conflict")) {
        log.info({ audit: "refused", route: `${route.method.toUpperCase()} ${route.path}`, sourceIp, status: problemStatus(error), reason: boundAuditText(error.message) }, "request refused");
        // An authenticated caller's refusal is audited (who tried what, and why not); an
        // anonymous one only goes to the log, so unauthenticated traffic cannot fill the table.
        if (caller && caller.kind !== "anonymous") {
          await runtime.inventory.audit
            .record({
              actor: caller.actor,
              action: auditActionOf(route.operationId),
              target: auditTarget ?? requestTarget(req),
              sourceIp,
              outcome: "denied",
              details: { status: problemStatus(error), reason: boundAuditText(error.message) },
            })
            .catch((auditError: Error) => log.error({ err: auditError }, "could not audit a refusal"));
        }
      }
      next(error);
    }
  };
}

const emptyQuery = z.strictObject({});

function sendTooMany(res: Response, error: TooManyFailures): void {
  res.setHeader("retry-after", String(error.retryAfterSeconds));
  sendProblem(res, 429, error.message);
}

/** Turns body-parser's limit error into a detail with the numbers. */
const bodyLimitProblem = (error: unknown, _req: Request, res: Response, next: NextFunction) => {
  const e = error as { type?: string; length?: number; limit?: number };
  if (e.type === "entity.too.large") {
    return sendProblem(res, 413, `the request body is ${e.length ?? "more than"} bytes; this endpoint accepts at most ${e.limit} bytes (a CSR is rarely more than a few KiB)`);
  }
  next(error);
};

/** The API's request listener: express, with the issuing request taken past its router (see issuing-lane.ts). */
export function createApiHandler(runtime: CaRuntime, log: Logger, options: ApiAppOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const { app, issuingLane } = buildApiApp(runtime, log, options);
  return withIssuingLane(app, issuingLane);
}

/** The express application alone (every route, the issuing one included). */
export function createApiApp(runtime: CaRuntime, log: Logger, options: ApiAppOptions = {}): Express {
  return buildApiApp(runtime, log, options).app;
}

function buildApiApp(runtime: CaRuntime, log: Logger, options: ApiAppOptions): { app: Express; issuingLane: IssuingLane } {
  const routes = apiRoutes(runtime);
  const document = openApiDocument(routes);
  const limiter = options.authFailures ?? new AuthFailureLimiter(options.authFailureLimit ?? runtime.config.api.authFailureLimit, options.authFailurePacing);
  const gate = new CredentialGate(limiter);
  const app = express();
  app.disable("x-powered-by");
  // The answers are fresh JSON each time; hashing every body for an ETag only cost CPU.
  app.disable("etag");
  app.set("query parser", "simple"); // no nested objects from ?a[b]=c
  const middleware = [requestLogger(log), requestTimer("api"), securityHeaders];
  app.use(...middleware);
  // ACME (RFC 8555) takes application/jose+json and answers its own problem documents.
  app.use(
    "/acme",
    acmeRouter(runtime, log, { ...(options.acmeProvisioners ? { provisioners: options.acmeProvisioners } : {}), ...(options.acmeValidation ? { validation: options.acmeValidation } : {}) }),
  );
  app.use(express.json({ limit: MAX_JSON_BYTES, strict: true, type: "application/json" }));
  app.use(express.raw({ limit: MAX_CSR_BYTES, type: "application/pkcs10" }));
  app.use(bodyLimitProblem);
  app.get("/openapi.json", (_req, res) => {
    res.json(document);
  });
  let issuingLane: IssuingLane | undefined;
  for (const route of routes) {
    const handlers = [requireContentType(route), bindRoute(route, runtime, limiter, gate, options.tokens, log)];
    app[route.method](expressPath(route.path), ...handlers);
    if (route.operationId === ISSUING_OPERATION) issuingLane = { method: "POST", path: route.path, maxBodyBytes: MAX_JSON_BYTES, middleware, route: handlers, onError: problemHandler };
  }
  app.use(consoleRouter());
  app.use((req, res) => sendProblem(res, 404, `no such resource: ${req.method} ${req.path} (see /openapi.json)`));
  app.use(bodyLimitProblem);
  app.use(problemHandler);
  if (!issuingLane) throw new Error(`the route table has no ${ISSUING_OPERATION} route`);
  return { app, issuingLane };
}
