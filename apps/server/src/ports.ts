import { createServer } from "node:net";

/**
 * Fails, naming the port, if any of `ports` cannot be bound on `host`. Checked before the
 * data dir is touched, so a start that cannot serve changes nothing on disk.
 */
export async function assertPortsFree(host: string, ports: Array<{ port: number; setting: string }>): Promise<void> {
  for (const { port, setting } of ports) {
    if (port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once("error", (error: NodeJS.ErrnoException) =>
        reject(
          new Error(`cannot listen on ${host}:${port} (${setting}): ${error.code === "EADDRINUSE" ? `the port is in use; stop what holds it or set ${setting}` : error.message}`, { cause: error }),
        ),
      );
      probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
    });
  }
}
