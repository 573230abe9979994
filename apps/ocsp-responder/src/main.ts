// The OCSP responder alone: no token, no CA keys; pre-signed answers from memory and the
// database. Run as many as needed behind a load balancer.
import { createServer } from "node:http";
import { loadConfig, ConfigError } from "@pki/config";
import { createLogger } from "@pki/logger";
import { systemClock } from "@pki/base";
import { openOcspStore } from "@pki/db";
import { cachedReadiness, closeGracefully, listen, opsHandler } from "@pki/http-kit";
import { createOcspResponderRole } from "./role.ts";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "ocsp-responder");
  // Read-only and keyless: its database user may only SELECT what it answers from, so it
  // never migrates (an out-of-date schema stops it with "run `pki migrate`").
  const inventory = await openOcspStore({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir, embeddedRole: "server" });
  // A replica behind a load balancer takes traffic once every pre-signed response is in
  // memory: it listens (and so answers /readyz) only after loading them. The all-in-one
  // server loads them in the background instead, answering from the database meanwhile.
  const role = await createOcspResponderRole({ inventory, config, clock: systemClock, log });
  // Ready when the database answers; answers come from memory, which holds no CA key.
  const ops = opsHandler(
    cachedReadiness(async () => ({
      database: await inventory.ping().then(
        () => "ok",
        () => "unavailable",
      ),
    })),
  );
  const fallback = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    if (ops(req, res)) return;
    res
      .writeHead(404, { "content-type": "application/problem+json" })
      .end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, detail: `no such resource: ${req.method} ${req.url}` }));
  };
  const server = createServer(role.handler(fallback));
  const port = await listen(server, config.http.port, config.http.bind);
  log.info({ port, responses: role.responder.size }, "OCSP responder running");
  const stop = async () => {
    await closeGracefully(server);
    role.stop();
    await inventory.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main().catch((error: unknown) => {
  console.error(`ocsp-responder: ${error instanceof ConfigError ? `configuration: ${error.problems.join("; ")}` : (error as Error).message}`);
  process.exit(1);
});
