export { acmeProvisionerCache, acmeRouter, MAX_JWS_BYTES, type AcmeProvisionerCache, type AcmeRouterOptions, type ValidateChallenge } from "./router.ts";
export { createEabKey } from "./eab.ts";
export { parseCertId, renewalWindow } from "./renewal-info.ts";
