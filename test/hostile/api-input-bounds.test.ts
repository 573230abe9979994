// Hostile values that used to reach the database or the audit table: huge caller text in
// refused requests, lifetimes under a minute, cursors out of range, NUL characters. Each
// must be a 4xx naming the problem (never 5xx), and no audit row may grow with the input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_TEXT_MAX_BYTES } from "@pki/db";
import { startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr } from "../support/tools.ts";

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", authFailureLimit: 100_000 });
});
afterAll(async () => {
  await t?.stop();
});

const admin = (method: string, path: string, options: Parameters<TestApi["call"]>[2] = {}) => t.call(method, path, { token: t.ca.adminToken, ...options });

function expectProblem(res: Awaited<ReturnType<TestApi["call"]>>, status: number, detail: RegExp) {
  expect(res.status, res.text).toBe(status);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  expect(res.json.detail).toMatch(detail);
}

/** Bytes of text in the newest audit row, and the row. */
async function newestAuditRow() {
  const [row] = await t.ca.inventory.sql.query<{ action: string; outcome: string; bytes: number }>(
    `SELECT action, outcome, octet_length(actor) + octet_length(action) + coalesce(octet_length(target), 0) + coalesce(octet_length(source_ip), 0) + coalesce(octet_length(details::text), 0) AS bytes
       FROM audit_events ORDER BY id DESC LIMIT 1`,
  );
  return row!;
}

describe("audit rows of refused requests are bounded", () => {
  it("a 12 KB serial in the path of a refused revoke stores at most a few hundred bytes", async () => {
    const huge = "ab".repeat(6 * 1024);
    expectProblem(await admin("POST", `/v1/certificates/${huge}/revoke`, { body: { reason: "keyCompromise" } }), 400, /^path serial: must be the certificate serial/);
    const row = await newestAuditRow();
    expect(row).toMatchObject({ action: "certificate.revoke", outcome: "denied" });
    expect(row.bytes).toBeLessThan(4 * AUDIT_TEXT_MAX_BYTES);
  });

  it("a 16 KB unknown field name in a refused revoke body stores at most a few hundred bytes", async () => {
    const issued = (await admin("POST", "/v1/certificates", { body: { csr: opensslCsr({ sans: ["DNS:bounded.example"] }).csrPem, profile: "server" } })).json;
    const body = JSON.stringify({ reason: "keyCompromise", ["x".repeat(16 * 1024)]: 1 });
    const res = await admin("POST", `/v1/certificates/${issued.serial}/revoke`, { raw: body, contentType: "application/json" });
    expectProblem(res, 400, /^unknown field 'x{100,}'$/);
    const row = await newestAuditRow();
    expect(row).toMatchObject({ action: "certificate.revoke", outcome: "denied" });
    expect(row.bytes).toBeLessThan(4 * AUDIT_TEXT_MAX_BYTES);
    expect(await t.ca.inventory.certificates.get(issued.serial)).toMatchObject({ status: "valid" });
  });
});

describe("lifetimes under a minute", () => {
  const csr = () => opensslCsr({ sans: ["DNS:a.short.example"] }).csrPem;

  it("ttlSeconds under 60 is a 400 naming the minimum, in JSON and in the pkcs10 query", async () => {
    const rows = await t.certificateRows();
    expectProblem(await admin("POST", "/v1/certificates", { body: { csr: csr(), ttlSeconds: 30 } }), 400, /^ttlSeconds: must be at least 60 seconds/);
    const der = Buffer.from(csr().replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    expectProblem(await admin("POST", "/v1/certificates?ttlSeconds=59", { raw: der, contentType: "application/pkcs10" }), 400, /^query ttlSeconds: must be at least 60 seconds/);
    expect(await t.certificateRows()).toBe(rows);
  });

  it("ttlSeconds of exactly 60 issues", async () => {
    const res = await admin("POST", "/v1/certificates", { body: { csr: csr(), ttlSeconds: 60 } });
    expect(res.status, res.text).toBe(201);
    expect(Date.parse(res.json.notAfter) - Date.now()).toBeGreaterThan(0);
  });

  it("a provisioner with maxTtlSeconds 60 can issue; under 60 it cannot be created", async () => {
    expectProblem(
      await admin("POST", "/v1/provisioners", { body: { name: "brief", profiles: ["server"], names: ["DNS:.short.example"], maxTtlSeconds: 59 } }),
      400,
      /^maxTtlSeconds: must be at least 60 seconds/,
    );
    const created = await admin("POST", "/v1/provisioners", { body: { name: "minute", profiles: ["server"], names: ["DNS:.short.example"], maxTtlSeconds: 60 } });
    expect(created.status, created.text).toBe(201);
    const res = await t.call("POST", "/v1/certificates", { token: created.json.token, body: { csr: csr(), profile: "server" } });
    expect(res.status, res.text).toBe(201);
    const backdate = t.ca.config().ca.backdateSeconds;
    expect((Date.parse(res.json.notAfter) - Date.parse(res.json.notBefore)) / 1000).toBe(60 + backdate);
  });
});

describe("inventory search input the database cannot take", () => {
  const cursor = (text: string) => Buffer.from(text).toString("base64url");

  it.each([
    ["a time past year 9999", `${8.64e15}:ab`],
    ["a time before 1970", `${-8.64e15}:ab`],
    ["a huge number", `1e300:ab`],
    ["a fractional time", `1.5:ab`],
    ["a 200-digit serial", `1000:${"a".repeat(100)}`],
  ])("a cursor with %s is a 400 naming the cursor", async (_what, text) => {
    expectProblem(await admin("GET", `/v1/certificates?cursor=${cursor(text)}`), 400, /^query cursor: is not one this API returned/);
  });

  it.each([
    ["q", "abc%00def"],
    ["issuerId", "default%00"],
    ["profile", "server%00"],
  ])("a NUL in %s is a 400 naming the field", async (field, value) => {
    const res = await admin("GET", `/v1/certificates?${field}=${value}`);
    expect(res.status, res.text).toBe(400);
    expect(res.json.detail).toMatch(new RegExp(`^query ${field}: `));
  });

  it("a NUL in a provisioner name in the path is a 400, not a database error", async () => {
    const res = await admin("PATCH", "/v1/provisioners/a%00b", { body: { disabled: true } });
    expectProblem(res, 400, /^path name: contains a NUL character/);
  });
});
