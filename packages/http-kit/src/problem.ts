import type { ErrorRequestHandler, Response } from "express";
import { CaError, type CaErrorKind, StartupCheckError } from "@pki/base";
import { LintError } from "@pki/lint";

const STATUS: Record<CaErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  internal: 500,
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** RFC 9457 problem details. `detail` is for a person: what was wrong and what to do. */
export function sendProblem(res: Response, status: number, detail: string, type = "about:blank"): void {
  if (res.headersSent) return;
  res
    .status(status)
    .type("application/problem+json")
    .json({ type, title: TITLES[status] ?? "Error", status, detail });
}

export function problemStatus(error: unknown): number {
  return error instanceof CaError ? STATUS[error.kind] : 500;
}

/** Last middleware: every error becomes problem+json; stack traces stay in the log. */
export const problemHandler: ErrorRequestHandler = (error, req, res, _next) => {
  const e = error as { type?: string; status?: number; expose?: boolean; message?: string };
  if (error instanceof CaError) {
    // the cause (a database or token error) goes to the log, never to the client
    if (error.kind === "internal") req.log?.error({ err: error, cause: error.cause }, "internal error");
    else if (error.kind === "unavailable") req.log?.warn({ err: error, cause: error.cause }, "dependency unavailable");
    return sendProblem(res, STATUS[error.kind], error.message);
  }
  if (error instanceof StartupCheckError) return sendProblem(res, 503, error.message);
  // body-parser errors carry status and a type
  if (e.type === "entity.too.large") return sendProblem(res, 413, "the request body is larger than this endpoint accepts");
  if (e.type === "entity.parse.failed") return sendProblem(res, 400, "the request body is not valid JSON");
  if (e.type === "charset.unsupported" || e.type === "encoding.unsupported") return sendProblem(res, 415, e.message ?? "unsupported encoding");
  if (typeof e.status === "number" && e.status >= 400 && e.status < 500 && e.expose) return sendProblem(res, e.status, e.message ?? "bad request");
  req.log?.error({ err: error }, error instanceof LintError ? "lint refused a certificate: this is a bug" : "unhandled error");
  sendProblem(res, 500, "the CA hit an internal error; it has been logged");
};
