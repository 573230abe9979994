import { isDatabaseOutage } from "@pki/db";
import { CaError, unavailable } from "@pki/x509";

export { CaError, badRequest, conflict, forbidden, notFound, unavailable } from "@pki/x509";

/**
 * A failed inventory call as the caller should see it: 503 only for a real outage (the
 * message says what did not happen); anything else is a 500 that keeps the database's
 * error as its cause for the log, never passed off as "unavailable".
 */
export function inventoryFailure(error: unknown, whatDidNotHappen: string): CaError {
  if (error instanceof CaError) return error;
  if (isDatabaseOutage(error)) return unavailable(`the inventory database is unavailable; ${whatDidNotHappen}`, error);
  return new CaError("internal", `the inventory database refused the request; ${whatDidNotHappen} (logged as a bug)`, { cause: error });
}
