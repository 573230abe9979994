// Loopback servers for the validator tests: real sockets, started and stopped by each test file.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { TestDnsServer } from "../../../test/support/dns-server.ts";
import type { ChallengeSettings } from "./types.ts";

export { TestDnsServer };

export type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** An HTTP server whose answer per path the test sets; it records every request and connection. */
export class ChallengeHttpServer {
  readonly requests: { host: string | undefined; path: string; remote: string | undefined }[] = [];
  connections = 0;
  readonly handlers = new Map<string, Handler>();
  private readonly sockets = new Set<Socket>();

  private constructor(readonly server: Server) {}

  static async start(): Promise<ChallengeHttpServer> {
    const server = createServer();
    const fixture = new ChallengeHttpServer(server);
    server.on("connection", (socket) => {
      fixture.connections++;
      fixture.sockets.add(socket);
      socket.on("close", () => fixture.sockets.delete(socket));
    });
    server.on("request", (request, response) => {
      const path = request.url ?? "";
      fixture.requests.push({ host: request.headers.host, path, remote: request.socket.remoteAddress });
      const handler = fixture.handlers.get(path);
      if (handler) handler(request, response);
      else response.writeHead(404).end("not found");
    });
    await listen(server);
    return fixture;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  reset(): void {
    this.requests.length = 0;
    this.connections = 0;
    this.handlers.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function listen(server: NetServer | Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

export function settingsFor(dns: TestDnsServer, ports: { http01Port: number; tlsAlpn01Port: number }, overrides: Partial<ChallengeSettings> = {}): ChallengeSettings {
  return { resolver: dns.address, timeoutMs: 5000, maxResponseBytes: 1024, ...ports, ...overrides };
}

export const TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
export const KEY_AUTHORIZATION = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
export const CHALLENGE_PATH = `/.well-known/acme-challenge/${TOKEN}`;
