// Peer: `openssl ocsp -index` as a responder that signs every answer live (software P-256
// CA as responder, index.txt with 1,000 valid certificates), one process as it starts by
// default, with `-multi 2 -timeout 1` (two responder processes, one per core). OpenSSL
// 3.0's responder hangs on a connection that sends nothing (wrk's probe connection) and
// after a load generator stops mid-request, so it is started fresh and measured once. Load: ApacheBench (ab), 16
// concurrent, because the responder answers HTTP/1.0 and closes every connection, which
// wrk handled badly (0 requests in some runs). ab repeats one request body; every answer is
// signed live anyway. Note:
// `openssl ocsp -port` takes a port only and listens on every interface (for the few seconds
// of this measurement, on a random high port); the load itself goes to 127.0.0.1 only.
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Group } from "../lib/types.ts";
import { freePort, start } from "../lib/proc.ts";
import { createSoftCa, randomSerial } from "../lib/softca.ts";
import { ab } from "../lib/ab.ts";
import { setTimeout as sleep } from "node:timers/promises";

const group: Group = async (ctx) => {
  const ca = createSoftCa(ctx.tmp);
  const serials = Array.from({ length: 1000 }, randomSerial);
  const expiry = `${new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/[-:T]/g, "").slice(2, 14)}Z`;
  writeFileSync(path.join(ctx.tmp, "index.txt"), serials.map((s, i) => `V\t${expiry}\t\t${s.toUpperCase()}\tunknown\t/CN=svc-${i}.example.com\n`).join(""));
  const port = await freePort();
  const server = start(
    "openssl",
    ["ocsp", "-index", path.join(ctx.tmp, "index.txt"), "-port", String(port), "-multi", "2", "-timeout", "1", "-rsigner", ca.certPath, "-rkey", ca.keyPath, "-CA", ca.certPath, "-ndays", "1"],
    { cwd: ctx.tmp, forks: true },
  );
  try {
    for (let i = 0; i < 100 && !/ACCEPT/.test(server.output()); i++) {
      if (server.child.exitCode !== null) throw new Error(`openssl ocsp exited: ${server.output()}`);
      await sleep(50);
    }
    await sleep(1000);
    const body = ca.ocspRequest(serials[1]!);
    let r;
    try {
      r = ab({
        url: `http://127.0.0.1:${port}/`,
        body,
        contentType: "application/ocsp-request",
        concurrency: 16,
        maxRequests: 2_000_000,
        bodyFile: path.join(ctx.tmp, "req.der"),
        seconds: ctx.seconds,
      });
    } catch (error) {
      throw new Error(`${(error as Error).message.trim()}; responder output: ${server.output().slice(-300)}`);
    }
    if (r.requests === 0) throw new Error(`ab completed no request; responder said: ${server.output().slice(-500)}`);
    return [
      {
        id: "peer.openssl.ocsp",
        label: "openssl ocsp -index -multi 2, live signing, POST (ab, 16 concurrent)",
        value: r.rps,
        unit: "req/s",
        details: {
          p50: r.p50,
          p99: r.p99,
          max: r.max,
          errors: r.errors,
          requests: r.requests,
          note: "no warm-up (the responder hangs after a client stops mid-request, so it runs once); latencies in whole ms",
        },
      },
    ];
  } finally {
    await server.stop();
  }
};
export default group;
