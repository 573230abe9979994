// Telling a database outage from a refused statement. Only an outage is "unavailable"
// (503, try again later); anything else is a bug or bad input that retrying cannot fix,
// and must keep its cause instead of being relabelled as an outage.

/** SQLSTATE classes and codes that mean "cannot serve now": connection, conflict retry, resources, operator intervention, system. */
const OUTAGE_SQLSTATE = /^(08|40001|40P01|53|57|58)/;
/** Socket errors from the driver on the way to the server. */
const OUTAGE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
/** What node-postgres says when the connection goes away or cannot be had in time. */
const OUTAGE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|the database system is (shutting down|starting up)/i;

/** True when `error` (or an error it wraps) says the database is unreachable or overloaded. */
export function isDatabaseOutage(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string" && (OUTAGE_ERRNO.has(code) || (/^[0-9A-Z]{5}$/.test(code) && OUTAGE_SQLSTATE.test(code)))) return true;
    if (typeof message === "string" && OUTAGE_MESSAGE.test(message)) return true;
  }
  return false;
}
