import { Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import express from "express";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { requestLogger } from "./logging.ts";

/** An express app on a real port whose request logs go to `lines`, as JSON objects. */
async function appLoggingAt(level: string, lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level }, sink);
  const app = express();
  app.use(requestLogger(logger));
  app.get("/ok", (req, res) => {
    req.log?.warn({ step: "inside" }, "a handler's own line");
    res.json({ ok: true });
  });
  app.get("/broken", (_req, res) => {
    res.status(500).json({ broken: true });
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((resolve) => server.close(resolve)) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("requestLogger", () => {
  it("logs one line per request with its id, and binds that id to the handler's own lines", async () => {
    const lines: Record<string, unknown>[] = [];
    const app = await appLoggingAt("info", lines);
    try {
      const answer = await fetch(`${app.base}/ok?x=1`, { headers: { "x-request-id": "trace-42", authorization: "Bearer secret-token" } });
      expect(answer.headers.get("x-request-id")).toBe("trace-42");
      await settle();
      expect(lines).toContainEqual(expect.objectContaining({ reqId: "trace-42", step: "inside", msg: "a handler's own line" }));
      expect(lines).toContainEqual(expect.objectContaining({ reqId: "trace-42", msg: "request completed", req: expect.objectContaining({ method: "GET", url: "/ok?x=1" }), res: { statusCode: 200 } }));
      expect(JSON.stringify(lines)).not.toContain("secret-token");

      const unnamed = await fetch(`${app.base}/ok`, { headers: { "x-request-id": "not a token; <script>" } });
      expect(unnamed.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await app.close();
    }
  });

  it("writes nothing for a request at a level that is off, but still logs a 5xx at error", async () => {
    const lines: Record<string, unknown>[] = [];
    const app = await appLoggingAt("error", lines);
    try {
      await fetch(`${app.base}/ok`);
      await fetch(`${app.base}/broken`);
      await settle();
      expect(lines.map((l) => [l.msg, (l.res as { statusCode?: number } | undefined)?.statusCode])).toEqual([["request completed", 500]]);
    } finally {
      await app.close();
    }
  });
});
