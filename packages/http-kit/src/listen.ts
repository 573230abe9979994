import type { Server } from "node:http";

/**
 * Keep-alive timing for every listener. Node closes an idle keep-alive connection after
 * 5 s by default; a client that sends its next request just then (likelier when the
 * event loop is busy) sees "socket hang up" on a request the server never read. A longer
 * idle timeout than clients and load balancers use (60 s is common) makes the server
 * never the side that closes first; headersTimeout must exceed it.
 */
export function keepAliveTimings(server: { keepAliveTimeout: number; headersTimeout: number; requestTimeout: number }): void {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 120_000;
}

/** Resolves once the server listens; rejects with a one-line reason (e.g. port in use). */
export function listen(server: Server, port: number, host: string): Promise<number> {
  keepAliveTimings(server);
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === "EADDRINUSE" ? `port ${port} on ${host} is already in use` : `cannot listen on ${host}:${port}: ${error.message}`));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes idle keep-alives. */
export function closeGracefully(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
