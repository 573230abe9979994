import { randomUUID } from "node:crypto";
import type { RequestHandler } from "express";
import type { Logger } from "@pki/logger";

declare module "http" {
  interface IncomingMessage {
    /** this request's logger (its request id bound); made on first use */
    log?: Logger;
  }
}

/**
 * One JSON line per request ("request completed": request id, method, URL, source address,
 * status, milliseconds; at info, 5xx at error), and the request id in X-Request-Id (the
 * client's own, if it is a plain token of up to 64 characters). Headers are never logged:
 * they carry credentials.
 *
 * Hand-written rather than pino-http: under issuance load a profile of the API put pino-http
 * (a child logger and serializers for every request, even with request logs turned off) at
 * several percent of the process's CPU. Here a child logger is made only when a handler
 * logs, and nothing is built for a line whose level is off.
 */
export function requestLogger(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers["x-request-id"];
    const id = typeof incoming === "string" && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader("x-request-id", id);
    let child: Logger | undefined;
    Object.defineProperty(req, "log", { get: () => (child ??= logger.child({ reqId: id })), configurable: true });
    const started = performance.now();
    res.once("finish", () => {
      const level = res.statusCode >= 500 ? "error" : "info";
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          reqId: id,
          req: { method: req.method, url: req.originalUrl, remoteAddress: req.socket.remoteAddress },
          res: { statusCode: res.statusCode },
          responseTime: Math.round(performance.now() - started),
        },
        "request completed",
      );
    });
    next();
  };
}

/** Conservative headers for an API and a few static documents. */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("x-frame-options", "DENY");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("content-security-policy", "default-src 'none'; frame-ancestors 'none'");
  next();
};
