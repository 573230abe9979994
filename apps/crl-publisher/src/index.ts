export { CrlCache, type CachedCrl } from "./cache.ts";
export { crlRouter } from "./router.ts";
export { createCrlPublisherRole, type CrlPublisherRole } from "./role.ts";
