// The API keeps the bearer tokens it verified in memory (no database round trip per
// enrolment for the credential) and forgets them all the moment any credential changes,
// whoever changes it: here the CLI, another process, on the real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr, pki } from "../support/tools.ts";

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
});

afterAll(async () => {
  await t?.stop();
});

const enrol = (token: string, host: string) => t.call("POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: [`DNS:${host}`] }).csrPem, ttlSeconds: 3600 } });

/** Enrols until the token is served from the cache (the listener comes up with the first use). */
async function cached(token: string, host: string): Promise<void> {
  const before = t.api.cachedTokens();
  for (let i = 0; i < 50 && t.api.cachedTokens() === before; i++) {
    expect((await enrol(token, `${i}.${host}`)).status).toBe(201);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(t.api.cachedTokens()).toBe(before + 1);
}

describe("verified bearer tokens", () => {
  it("are kept between requests, and a provisioner disabled or narrowed by the CLI is refused on its very next request", async () => {
    const added = pki(["provisioner", "add", "cached", "--names", "DNS:.cached.example", "DNS:.other.example"], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    const token = added.stdout.trim();
    await cached(token, "warm.cached.example");

    expect(pki(["provisioner", "update", "cached", "--names", "DNS:.cached.example"], t.ca.env).status).toBe(0);
    expect((await enrol(token, "a.other.example")).status).toBe(403);
    expect((await enrol(token, "b.cached.example")).status).toBe(201);

    // verified again after the change, and kept again
    expect(t.api.cachedTokens()).toBe(1);
    expect(pki(["provisioner", "disable", "cached"], t.ca.env).status).toBe(0);
    expect((await enrol(token, "c.cached.example")).status).toBe(401);
  });

  it("forget an operator's admin token the moment the operator is removed", async () => {
    const added = pki(["admin", "add", "temp-operator"], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    const token = added.stdout.trim();
    await cached(token, "admin.cached.example");
    expect(pki(["admin", "remove", "temp-operator"], t.ca.env).status).toBe(0);
    expect((await enrol(token, "after.cached.example")).status).toBe(401);
  });
});
