// Ceiling: a bare node:http server (its own process) returning a fixed, real OCSP response
// (signed by a software P-256 CA, responder certificate included, as ours are), loaded by
// wrk with the same OCSP POST request mix the responders get.
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Group } from "../lib/types.ts";
import { startBareHttp } from "../lib/bare-http.ts";
import { createSoftCa, randomSerial } from "../lib/softca.ts";
import { failures, wrk } from "../lib/wrk.ts";

const group: Group = async (ctx) => {
  const ca = createSoftCa(ctx.tmp);
  const serials = Array.from({ length: 1000 }, randomSerial);
  const response = await ca.ocspResponse(serials[0]!);
  const file = path.join(ctx.tmp, "response.der");
  writeFileSync(file, response);
  const server = await startBareHttp(file);
  try {
    const requests = serials.map((s) => ({ method: "POST" as const, path: "/", body: ca.ocspRequest(s) }));
    const headers = { "Content-Type": "application/ocsp-request" };
    await wrk({ url: server.url, requests, headers, seconds: ctx.warmupSeconds });
    const r = await wrk({ url: server.url, requests, headers, seconds: ctx.seconds, maxPerThread: 2_000_000 });
    return [
      {
        id: "ceiling.http",
        label: `bare node:http, fixed ${response.length}-byte OCSP response, POST`,
        value: r.rps,
        unit: "req/s",
        details: { ...r.latency, errors: failures(r), requests: r.requests, seconds: r.seconds, responseBytes: response.length },
      },
    ];
  } finally {
    await server.stop();
  }
};
export default group;
