// What every process shares and nothing more: errors a person can act on, injectable
// time, the start-up refusal, the ETag of a DER answer. No dependencies, so a keyless
// process (the OCSP responder) and the HTTP kit can use them without loading the CA's
// token, database or certificate packages.
export { CaError, badRequest, conflict, forbidden, notFound, unavailable, type CaErrorKind } from "./errors.ts";
export { type Clock, systemClock } from "./clock.ts";
export { StartupCheckError } from "./startup-check.ts";
export { derEtag } from "./etag.ts";
