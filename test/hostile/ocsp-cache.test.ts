// The OCSP responder's request cache under hostile spellings: one question asked in
// thousands of URL spellings and POSTs padded with made-up extensions must not grow memory.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { OCSPRequest } from "@peculiar/asn1-ocsp";
import { Extension } from "@peculiar/asn1-x509";
import { OcspResponder, ocspHttpHandler } from "@pki/ocsp-responder";
import { fetchBytes, startRevocationCa, unusedPort, type IssuedLeaf, type RevocationCa } from "../support/revocation.ts";
import { run } from "../support/tools.ts";

let rca: RevocationCa;
let good: IssuedLeaf;
beforeAll(async () => {
  rca = await startRevocationCa();
  good = await rca.issue({ commonName: "cache.ocsp.example" });
  await rca.settle();
});
afterAll(async () => {
  await rca?.stop();
});

const requestFor = (certPath: string, extra: string[] = []) => {
  const reqPath = path.join(rca.dir, `req-${randomBytes(4).toString("hex")}.der`);
  expect(run("openssl", ["ocsp", "-issuer", rca.intermediatePath, ...extra, "-cert", certPath, "-no_nonce", "-reqout", reqPath]).status).toBe(0);
  return readFileSync(reqPath);
};

/** The same request with a private extension of random content: a new byte string every time. */
function withRandomExtension(der: Buffer, i: number): Buffer {
  const request = AsnConvert.parse(der, OCSPRequest);
  request.tbsRequest.requestExtensions = [new Extension({ extnID: `1.3.6.1.4.1.55555.${i}`, extnValue: new OctetString(randomBytes(64)) })];
  return Buffer.from(AsnConvert.serialize(request));
}

describe("request cache", () => {
  it("keeps one entry for one question, however many URL spellings and padded POSTs ask it", async () => {
    const responder = rca.ocsp.responder;
    const der = requestFor(good.certPath);
    const base64 = der.toString("base64");
    const first = await fetchBytes(`${rca.baseUrl}/ocsp/${encodeURIComponent(base64)}`);
    expect(first.status).toBe(200);
    expect(responder.requestCacheUsage.entries).toBe(1);
    const honest = responder.requestCacheUsage.bytes;

    // Whitespace inside the base64 is dropped before decoding: every position, every
    // whitespace character, and a URL padded towards the size limit is the same request.
    const spellings: string[] = [];
    for (let i = 1; i < base64.length; i++) for (const space of ["%20", "%0A", "%09"]) spellings.push(base64.slice(0, i) + space + base64.slice(i));
    spellings.push(base64.slice(0, 10) + "%20".repeat(4000) + base64.slice(10));
    spellings.push(der.toString("base64url"), base64.replaceAll("/", "%2F").replaceAll("+", "%2B"));
    for (let i = 0; i < spellings.length; i += 32) {
      const answers = await Promise.all(spellings.slice(i, i + 32).map((s) => fetchBytes(`${rca.baseUrl}/ocsp/${s}`)));
      for (const a of answers) expect(a.status).toBe(200);
    }
    expect(spellings.length).toBeGreaterThan(200);

    // POST bodies made distinct by request extensions are answered, never remembered.
    for (let i = 0; i < 200; i += 20) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: new Uint8Array(withRandomExtension(der, i + j)) }),
        ),
      );
      for (const a of answers) expect(a.status).toBe(200);
    }

    expect(responder.requestCacheUsage).toEqual({ entries: 1, bytes: honest });
    expect(honest).toBeLessThan(1024);
  });

  it("stays within its byte budget, dropping the oldest entries", async () => {
    const leaves = [good];
    for (let i = 0; i < 5; i++) leaves.push(await rca.issue({ commonName: `cache-${i}.ocsp.example` }));
    await rca.settle();
    const ders = leaves.map((l) => requestFor(l.certPath, ["-sha256"]));
    const budget = 3 * (ders[0]!.length + 200);
    const responder = new OcspResponder({ inventory: rca.ca.inventory, config: rca.ca.runtime.config, clock: rca.ca.runtime.clock, requestCacheMaxBytes: budget });
    await responder.start();
    const port = await unusedPort();
    const server: Server = createServer(ocspHttpHandler(responder, (_req, res) => void res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    try {
      for (const der of ders) {
        const answer = await fetchBytes(`http://127.0.0.1:${port}/ocsp/${encodeURIComponent(der.toString("base64"))}`);
        expect(answer.status).toBe(200);
        expect(responder.requestCacheUsage.bytes).toBeLessThanOrEqual(budget);
      }
      expect(responder.requestCacheUsage.entries).toBe(3);
      // The newest are kept: asking again is answered from the cache without parsing.
      expect(responder.answerFromCache(ders[ders.length - 1]!)?.outcome).toBe("good");
      expect(responder.answerFromCache(ders[0]!)).toBeUndefined();
    } finally {
      server.close();
      server.closeAllConnections();
      responder.stop();
    }
  });
});
