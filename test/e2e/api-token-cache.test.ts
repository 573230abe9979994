// The API keeps the bearer tokens it verified, and the ACME provisioners it looked up, in
// memory (no database round trip per request for them) and forgets them all the moment any
// credential or ACME setting changes, whoever changes it: here the CLI, another process,
// on the real PostgreSQL.
import pg from "pg";
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

describe("ACME provisioners", () => {
  const directory = () => t.call("GET", "/acme/cached-acme/directory");

  it("are kept between requests, and one disabled, re-enabled or switched to EAB by hand is seen on its very next request", async () => {
    const added = pki(["provisioner", "add", "cached-acme", "--type", "acme", "--names", "DNS:.acme.cached.example"], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    // the listener comes up with the first lookup; from then on the provisioner is kept
    for (let i = 0; i < 50 && t.api.cachedAcmeProvisioners() === 0; i++) {
      expect((await directory()).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(t.api.cachedAcmeProvisioners()).toBe(1);

    expect(pki(["provisioner", "disable", "cached-acme"], t.ca.env).status).toBe(0);
    expect((await directory()).status).toBe(403);
    expect(pki(["provisioner", "enable", "cached-acme"], t.ca.env).status).toBe(0);
    const enabled = await directory();
    expect(enabled.status).toBe(200);
    expect(enabled.json.meta.externalAccountRequired).toBe(false);
    expect(t.api.cachedAcmeProvisioners()).toBe(1);

    // a change to the ACME settings alone (no CLI command does that) is heard too
    const db = new pg.Client({ connectionString: t.ca.env.DATABASE_URL });
    await db.connect();
    try {
      await db.query("UPDATE acme_provisioners SET eab_required = true WHERE provisioner_id = (SELECT id FROM provisioners WHERE name = 'cached-acme')");
    } finally {
      await db.end();
    }
    expect((await directory()).json.meta.externalAccountRequired).toBe(true);
  });
});
