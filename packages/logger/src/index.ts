import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Structured JSON logs. Anything that could hold a secret is redacted by path, so a
 * careless `log.info({ config })` still never prints a PIN or a token.
 */
export function createLogger(level: string, name = "pki"): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        "pin",
        "*.pin",
        "*.*.pin",
        "token",
        "*.token",
        "authorization",
        "*.authorization",
        "req.headers.authorization",
        "headers.authorization",
        "bootstrapAdminToken",
        "*.bootstrapAdminToken",
        "soPin",
        "*.soPin",
      ],
      censor: "[redacted]",
    },
  });
}
