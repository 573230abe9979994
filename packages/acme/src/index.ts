export { acmeProvisionerCache, acmeRouter, MAX_JWS_BYTES, type AcmeProvisionerCache, type AcmeRouterOptions } from "./router.ts";
export { InProcessValidator, ValidationWorker, type ValidationJob } from "./validation.ts";
export { runAcmeValidator } from "./validator-process.ts";
export { ValidatorChild } from "./validator-child.ts";
export { createEabKey } from "./eab.ts";
export { parseCertId, renewalWindow } from "./renewal-info.ts";
