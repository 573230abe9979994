// The CRL publisher and OCSP pre-signer alone: holds the issuing token, serves /crl/*.
import { createServer } from "node:http";
import express from "express";
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";
import { StartupCheckError, openCa, systemClock } from "@pki/authority";
import { closeGracefully, listen, opsHandler, problemHandler, requestLogger, runtimeReadiness, securityHeaders, sendProblem } from "@pki/http-kit";
import { createCrlPublisherRole } from "./role.ts";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "crl-publisher");
  const runtime = await openCa(config, systemClock);
  const role = await createCrlPublisherRole(runtime, log);
  const app = express();
  app.disable("x-powered-by");
  app.use(requestLogger(log), securityHeaders);
  const ops = opsHandler(runtimeReadiness(runtime));
  app.use((req, res, next) => (ops(req, res) ? undefined : next()));
  app.use(role.router);
  app.use((req, res) => sendProblem(res, 404, `no such resource: ${req.method} ${req.path}`));
  app.use(problemHandler);
  const server = createServer(app);
  const port = await listen(server, config.http.port, config.http.bind);
  log.info({ port }, "CRL publisher and OCSP pre-signer running");
  const stop = async () => {
    await closeGracefully(server);
    await role.stop();
    await runtime.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : error instanceof StartupCheckError ? `refusing to start: ${error.message}` : (error as Error).message;
  console.error(`crl-publisher: ${message}`);
  process.exit(1);
});
