// The relying-party check's fetches against a real local HTTP server: every way an answer
// can be too big, too slow or somewhere else ends in an error naming it, never in memory
// growing with what the server sends.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchBounded } from "./relying-party.ts";

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/small") return res.end(Buffer.alloc(100, 1));
    if (req.url === "/declared") {
      res.writeHead(200, { "content-length": String(10 * 1024 * 1024) });
      return res.write(Buffer.alloc(1024));
    }
    if (req.url === "/endless") {
      // chunked, no length: keeps sending until the client goes away
      const chunk = Buffer.alloc(64 * 1024, 2);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      return pump();
    }
    if (req.url === "/redirect") {
      res.writeHead(302, { location: "http://127.0.0.1:9/elsewhere" });
      return res.end();
    }
    if (req.url === "/silent") return; // never answers
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("fetchBounded", () => {
  it("reads an answer within the limit", async () => {
    expect(await fetchBounded(`${base}/small`, {}, 1000, 2000)).toHaveLength(100);
  });

  it("refuses a declared length over the limit without reading it", async () => {
    await expect(fetchBounded(`${base}/declared`, {}, 1024 * 1024, 2000)).rejects.toThrow(/10485760 bytes, more than the 1048576/);
  });

  it("stops reading an endless answer at the limit", async () => {
    await expect(fetchBounded(`${base}/endless`, {}, 1024 * 1024, 5000)).rejects.toThrow(/more than the 1048576 bytes/);
  });

  it("follows no redirect", async () => {
    await expect(fetchBounded(`${base}/redirect`, {}, 1000, 2000)).rejects.toThrow();
  });

  it("gives up on a server that never answers", async () => {
    await expect(fetchBounded(`${base}/silent`, {}, 1000, 300)).rejects.toMatchObject({ name: "TimeoutError" });
  });

  it("names an HTTP error status", async () => {
    await expect(fetchBounded(`${base}/missing`, {}, 1000, 2000)).rejects.toThrow(/answered HTTP 404/);
  });
});
