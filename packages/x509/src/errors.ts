// The errors live in @pki/base, which processes that never parse a certificate load too.
export { CaError, badRequest, conflict, forbidden, notFound, unavailable, type CaErrorKind } from "@pki/base";
