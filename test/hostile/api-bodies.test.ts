// Random and hostile bodies against the issuing API, with an admin token so that only
// the input can be wrong: every answer is a 4xx problem+json naming the problem, the
// process keeps answering, and nothing is stored or signed. Seeded.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../support/api.ts";
import { testSettings } from "../support/settings.ts";

const RUNS = testSettings.fuzzHttpRuns;
let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", authFailureLimit: 100_000 });
});
afterAll(async () => {
  await t?.stop();
});

async function expectProblem(method: string, route: string, options: Parameters<TestApi["call"]>[2]) {
  const res = await t.call(method, route, { token: t.ca.adminToken, ...options });
  expect(res.status, res.text).toBeGreaterThanOrEqual(400);
  expect(res.status, res.text).toBeLessThan(500);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  expect(typeof res.json.detail).toBe("string");
  expect(res.json.detail.length).toBeGreaterThan(5);
  expect(res.text).not.toMatch(/at .*\.ts:\d+|node_modules/); // no stack traces to clients
}

describe("hostile request bodies", () => {
  it("random JSON to issuance and provisioner routes", async () => {
    const rowsBefore = await t.certificateRows();
    const routes: Array<[string, string]> = [
      ["POST", "/v1/certificates"],
      ["POST", "/v1/provisioners"],
      ["POST", "/v1/certificates/renew"],
      ["PATCH", "/v1/provisioners/nobody"],
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.jsonValue({ maxDepth: 4 }), async ([method, route], body) => {
        await expectProblem(method, route, { body });
      }),
      { numRuns: RUNS, seed: 20261123 },
    );
    expect(await t.certificateRows()).toBe(rowsBefore);
  });

  it("wrong types, deep nesting, huge strings, broken JSON, wrong content types", async () => {
    const rowsBefore = await t.certificateRows();
    const cases: Array<Parameters<TestApi["call"]>[2]> = [
      { body: { csr: 42 } },
      { body: { csr: ["-----BEGIN CERTIFICATE REQUEST-----"] } },
      { body: { csr: "x", profile: { $gt: "" } } },
      { body: { csr: "x", ttlSeconds: -1 } },
      { body: { csr: "x", ttlSeconds: 1e308 } },
      { body: { csr: "x", ttlSeconds: "3600" } },
      { body: { csr: "x", __proto__: { admin: true } } },
      { body: JSON.parse('{"csr":"x","constructor":{"prototype":{"polluted":true}}}') },
      { raw: "[".repeat(10_000) + "]".repeat(10_000), contentType: "application/json" },
      { raw: '{"csr": "unterminated', contentType: "application/json" },
      { raw: "csr=abc", contentType: "application/x-www-form-urlencoded" },
      { raw: Buffer.from([0x30, 0x82, 0xff, 0xff]), contentType: "application/pkcs10" },
      { raw: "\u0000\u0001\u0002", contentType: "text/plain" },
      { body: { csr: "A".repeat(200_000) } },
    ];
    for (const options of cases) await expectProblem("POST", "/v1/certificates", options);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await t.certificateRows()).toBe(rowsBefore);
    expect((await t.call("GET", "/v1/issuers")).status).toBe(200); // still serving
  });

  it("PEM shaped to make a parser rescan the body is a 400 naming the problem, and the server keeps answering", async () => {
    const rowsBefore = await t.certificateRows();
    // Each just under the 128 KB body limit. A backtracking PEM expression searched the rest
    // of the body from every BEGIN line, about a second of blocked event loop per request.
    const shapes: Array<[string, string]> = [
      ["-----BEGIN A-----".repeat(7_500), "the CSR's PEM block A has no END line before the next BEGIN"],
      [`-----BEGIN ${"A".repeat(65)}-----`.repeat(1_550), "the CSR is not PEM ('-----BEGIN CERTIFICATE REQUEST-----') or DER"],
      [`-----BEGIN CERTIFICATE REQUEST-----\n${"-----BEGIN\n".repeat(10_000)}`, "the CSR's PEM block CERTIFICATE REQUEST has no END line"],
    ];
    const hostile = shapes.flatMap(([csr, detail]) => Array.from({ length: 3 }, () => t.call("POST", "/v1/certificates", { token: t.ca.adminToken, body: { csr } }).then((res) => ({ res, detail }))));
    const alongside = Array.from({ length: 6 }, () => t.call("GET", "/v1/issuers"));
    const [refused, served] = await Promise.all([Promise.all(hostile), Promise.all(alongside)]);
    for (const { res, detail } of refused) {
      expect(res.status, res.text).toBe(400);
      expect(res.json.detail).toBe(detail);
    }
    for (const res of served) expect(res.status).toBe(200);
    expect(await t.certificateRows()).toBe(rowsBefore);
  });
});
