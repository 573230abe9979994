// Helpers for the scheduler and rotation tests: a clock that travels, and a real webhook
// receiver (node:http on 127.0.0.1) that records every POST and can be told to fail.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "@pki/authority";

export class TravelClock implements Clock {
  private at: number;
  constructor(start: Date = new Date()) {
    this.at = start.getTime();
  }
  now(): Date {
    return new Date(this.at);
  }
  set(date: Date): void {
    this.at = date.getTime();
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: { id: string; event: string; createdAt: string; data: Record<string, unknown> };
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** answer this status to every POST (undefined: 204) */
  failWith: number | undefined;
  /** POSTs answered with an error, in order */
  refused: number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = { url: "", received: [], failWith: undefined, refused: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (receiver.failWith) {
        receiver.refused++;
        res.writeHead(receiver.failWith).end("down for maintenance");
        return;
      }
      receiver.received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/pki`;
  receiver.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return receiver;
}

export const DAY = 86_400_000;
export const HOUR = 3_600_000;
