/**
 * A refusal or failure a person can act on. HTTP maps `kind` to a status and the message
 * to problem+json `detail`; the CLI prints the message as one line.
 */
export type CaErrorKind =
  | "bad_request" // malformed input: 400
  | "unauthorized" // no or bad credentials: 401
  | "forbidden" // not allowed by policy: 403
  | "not_found" // 404
  | "conflict" // e.g. already revoked: 409
  | "too_large" // 413
  | "unavailable" // token or database down: 503
  | "internal"; // a bug, e.g. a lint failure: 500

export class CaError extends Error {
  constructor(
    readonly kind: CaErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CaError";
  }
}

export const badRequest = (message: string, cause?: unknown) => new CaError("bad_request", message, { cause });
export const forbidden = (message: string, cause?: unknown) => new CaError("forbidden", message, { cause });
export const notFound = (message: string, cause?: unknown) => new CaError("not_found", message, { cause });
export const conflict = (message: string, cause?: unknown) => new CaError("conflict", message, { cause });
export const unavailable = (message: string, cause?: unknown) => new CaError("unavailable", message, { cause });
