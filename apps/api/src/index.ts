export { startApi, type ApiServer, type StartApiOptions } from "./server.ts";
export { createApiApp, createApiHandler, apiRoutes, MAX_JSON_BYTES } from "./app.ts";
export { openApiDocument } from "./openapi.ts";
export { provisionerView } from "./routes/provisioners.ts";
export { AuthFailureLimiter } from "./failure-limiter.ts";
export { startApiWorkers, type ApiWorkers } from "./workers.ts";
