// POST /v1/issuers/rotate over real HTTPS: admins only, the API process switches to the
// new intermediate at once, and a scheduled activation is reported as staged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr } from "@pki/x509";
import { startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr } from "../support/tools.ts";

describe("POST /v1/issuers/rotate", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ env: { PKI_KEYRING_RELOAD_SECONDS: "0" } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("refuses callers without the admin token", async () => {
    const anonymous = await t.call("POST", "/v1/issuers/rotate", { body: {} });
    expect(anonymous.status).toBe(401);
    const wrong = await t.call("POST", "/v1/issuers/rotate", { token: "not-an-admin-token-0000", body: {} });
    expect(wrong.status).toBe(401);
    expect((await t.ca.inventory.issuers.list()).filter((i) => i.role === "intermediate")).toHaveLength(1);
  });

  it("rotates now: the answer names the new active intermediate and this process issues from it at once", async () => {
    const before = t.ca.runtime.keyring.active().record.id;
    const response = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: {} });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ issuer: { status: "active", role: "intermediate", hierarchy: "default" }, activateAt: null, retired: [before] });
    const issued = await t.ca.runtime.authority.issue({ csr: parseCsr(opensslCsr({ subject: "/CN=after.rotate.test" }).csrPem), profile: "mtls", requester: { kind: "operator", actor: "test" } });
    expect(issued.issuerId).toBe(response.json.issuer.id);
    const listed = await t.call("GET", "/v1/issuers");
    expect(listed.json.find((i: { id: string }) => i.id === before).status).toBe("retired");
  });

  it("rotates later: the new intermediate is staged with its activation time; bad input is a 400", async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const response = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: { activateAt: at } });
    expect(response.status).toBe(201);
    expect(response.json.issuer.status).toBe("staged");
    expect(new Date(response.json.activateAt).toISOString()).toBe(at);
    const bad = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: { activateAt: "tomorrow" } });
    expect(bad.status).toBe(400);
    expect(bad.headers["content-type"]).toMatch(/problem\+json/);
    const unknown = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: { hierarchy: "nowhere" } });
    expect(unknown.status).toBe(404);
  });
});
