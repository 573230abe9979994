export { OcspResponder, REQUEST_CACHE_MAX_BYTES, MAX_CACHED_REQUEST_BYTES, type OcspResponderDeps, type OcspAnswer, type OcspOutcome } from "./responder.ts";
export { ocspHttpHandler, decodeGetRequest, MAX_OCSP_REQUEST_BYTES } from "./http.ts";
export { createOcspResponderRole, type OcspResponderRole } from "./role.ts";
