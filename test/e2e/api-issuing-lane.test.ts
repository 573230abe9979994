// The issuing request is answered past express's router (apps/api/src/issuing-lane.ts).
// Here the same requests go to the API's real handler and to the plain express app on one
// CA, and every answer must match: status, problem detail, headers, and what was stored.
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiApp, createApiHandler } from "@pki/api";
import { registry } from "@pki/http-kit";
import { createLogger } from "@pki/logger";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr } from "../support/tools.ts";

let ca: TestCa;
const servers: Server[] = [];
let laneUrl: string;
let expressUrl: string;

async function serve(listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  ca = await startTestCa({});
  const log = createLogger("silent");
  laneUrl = await serve(createApiHandler(ca.runtime, log));
  expressUrl = await serve(createApiApp(ca.runtime, log));
});
afterAll(async () => {
  for (const server of servers) server.close();
  await ca?.cleanup();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

function post(base: string, body: string | Buffer, headers: Record<string, string>, urlPath = "/v1/certificates"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${urlPath}`, { method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** What must be equal between the two paths: everything but the per-request values. */
function comparable(answer: Answer) {
  const { date: _date, "x-request-id": _id, "content-length": _length, ...headers } = answer.headers;
  const { serial: _serial, certificate: _certificate, notBefore: _nb, notAfter: _na, ...body } = answer.body;
  return { status: answer.status, headers, body };
}

const count = async () => Number((await ca.inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates"))[0]!.n);

describe("the issuing lane answers exactly as express does", () => {
  it("issues, and refuses bad bodies and credentials in the same words", async () => {
    const admin = { authorization: `Bearer ${ca.adminToken}`, "content-type": "application/json" };
    const csr = opensslCsr({ subject: "/CN=lane.example.com", sans: ["DNS:lane.example.com"] }).csrPem;
    const cases: Array<[string, string, Record<string, string>, number]> = [
      ["a good request", JSON.stringify({ csr, profile: "mtls" }), admin, 201],
      ["charset=utf-8", JSON.stringify({ csr }), { ...admin, "content-type": "application/json; charset=utf-8" }, 201],
      ["broken JSON", "{not json", admin, 400],
      ["JSON that is not an object", '"just a string"', admin, 400],
      ["a field of the wrong type", JSON.stringify({ csr: 5 }), admin, 400],
      ["an unknown field", JSON.stringify({ csr, colour: "blue" }), admin, 400],
      ["an unknown profile", JSON.stringify({ csr, profile: "codesigning" }), admin, 400],
      ["a CSR that is not one", JSON.stringify({ csr: "hello" }), admin, 400],
      ["a NUL in a field", JSON.stringify({ csr, profile: "mt\u0000ls" }), admin, 400],
      ["no credential", JSON.stringify({ csr }), { "content-type": "application/json" }, 401],
      ["a wrong token", JSON.stringify({ csr }), { ...admin, authorization: "Bearer pki_wrong" }, 401],
    ];
    for (const [what, body, headers, status] of cases) {
      const before = await count();
      const viaLane = await post(laneUrl, body, headers);
      const viaExpress = await post(expressUrl, body, headers);
      expect(viaLane.status, `${what}: ${JSON.stringify(viaLane.body)}`).toBe(status);
      expect(comparable(viaLane), what).toEqual(comparable(viaExpress));
      // a refusal stores nothing on either path; an issuance stores one row each
      expect(await count(), what).toBe(before + (status === 201 ? 2 : 0));
    }
  });

  it("times the lane's requests under the route's own label", async () => {
    const durations = (await registry.getMetricsAsJSON()).find((m) => m.name === "pki_http_request_duration_seconds")!;
    const issued = durations.values.find(
      (v) => (v as { metricName?: string }).metricName?.endsWith("_count") && v.labels.route === "/v1/certificates" && v.labels.method === "POST" && v.labels.status === "201",
    );
    // two issuing cases above, each sent down both paths
    expect(issued?.value).toBe(4);
  });
});
