export { sendProblem, problemHandler, problemStatus } from "./problem.ts";
export { registry, requestTimer } from "./metrics.ts";
export { requestLogger, securityHeaders } from "./logging.ts";
export { listen, closeGracefully, keepAliveTimings } from "./listen.ts";
export { runtimeReadiness, cachedReadiness, opsHandler, startOpsListener, type Readiness } from "./ops.ts";
