export { acmeProvisionerCache, acmeRouter, MAX_JWS_BYTES, type AcmeProvisionerCache, type AcmeRouterOptions } from "./router.ts";
export { InProcessValidator, type ValidationJob, type Validator } from "./validation.ts";
export { createEabKey } from "./eab.ts";
export { parseCertId, renewalWindow } from "./renewal-info.ts";
