// The operator's CLI and the issuing API share one core and one inventory: a provisioner
// added with `pki provisioner add` enrols over HTTPS, `pki cert show|list|revoke` see and
// change what the API issued, and removal stops the token at once.
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
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

describe("pki provisioner and pki cert against the API's inventory", () => {
  it("add, enrol over HTTPS, show, list, revoke, disable, enable, remove", async () => {
    const added = pki(["provisioner", "add", "billing", "--names", "DNS:.billing.example", "IP:10.9.0.0/16", "--profiles", "mtls", "client", "--max-ttl", "900"], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    const token = added.stdout.trim();
    expect(token).toMatch(/^pkp_[A-Za-z0-9_-]{43}$/);
    expect(added.stderr).toMatch(/provisioner 'billing' .* The token is not stored and cannot be shown again/);

    const listed = pki(["provisioner", "list", "--json"], t.ca.env);
    expect(
      JSON.parse(
        listed.stdout
          .trim()
          .split("\n")
          .find((l) => l.includes('"billing"'))!,
      ),
    ).toMatchObject({ name: "billing", state: "active", profiles: ["mtls", "client"], maxTtlSeconds: 900 });
    expect(listed.stdout).not.toContain(token);

    const issued = await t.call("POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: ["DNS:api.billing.example"] }).csrPem, ttlSeconds: 86400 } });
    expect(issued.status, issued.text).toBe(201);
    const serial = issued.json.serial as string;
    expect((Date.parse(issued.json.notAfter) - Date.parse(issued.json.notBefore)) / 1000).toBe(960);

    const updated = pki(["provisioner", "update", "billing", "--max-ttl", "300", "--names", "DNS:.billing.example"], t.ca.env);
    expect(updated.stdout.trim()).toBe("provisioner 'billing': profiles mtls, client; names DNS:.billing.example; max 300 s");
    const clipped = await t.call("POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: ["DNS:short.billing.example"] }).csrPem, ttlSeconds: 86400 } });
    expect((Date.parse(clipped.json.notAfter) - Date.parse(clipped.json.notBefore)) / 1000).toBe(360);

    const shown = pki(["cert", "show", serial, "--json"], t.ca.env);
    expect(shown.status, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ serial, status: "valid", sans: ["DNS:api.billing.example"], requester: "provisioner:billing", certificate: issued.json.certificate });
    const pem = pki(["cert", "show", serial, "--pem"], t.ca.env);
    expect(pem.stdout).toBe(issued.json.certificate);

    const found = pki(["cert", "list", "-q", "billing.example", "--json"], t.ca.env);
    expect(
      found.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).serial),
    ).toEqual([clipped.json.serial, serial]);

    const revoked = pki(["cert", "revoke", serial, "--reason", "keyCompromise"], t.ca.env);
    expect(revoked.status, revoked.stderr).toBe(0);
    const viaApi = await t.call("GET", `/v1/certificates/${serial}`, { token: t.ca.adminToken });
    expect(viaApi.json).toMatchObject({ status: "revoked", revocationReason: "keyCompromise" });
    const again = await t.call("POST", `/v1/certificates/${serial}/revoke`, { token: t.ca.adminToken });
    expect(again.status).toBe(409);
    expect(pki(["cert", "list", "--status", "revoked", "--json"], t.ca.env).stdout).toContain(serial);

    expect(pki(["provisioner", "disable", "billing"], t.ca.env).status).toBe(0);
    const csr = opensslCsr({ sans: ["DNS:web.billing.example"] }).csrPem;
    expect((await t.call("POST", "/v1/certificates", { token, body: { csr } })).status).toBe(401);
    expect(pki(["provisioner", "enable", "billing"], t.ca.env).status).toBe(0);
    expect((await t.call("POST", "/v1/certificates", { token, body: { csr } })).status).toBe(201);
    expect(pki(["provisioner", "remove", "billing"], t.ca.env).stdout).toMatch(/provisioner 'billing' removed/);
    expect((await t.call("POST", "/v1/certificates", { token, body: { csr } })).status).toBe(401);
    expect(pki(["provisioner", "list", "--all"], t.ca.env).stdout).toMatch(/billing\s+removed/);

    const audit = (await t.ca.inventory.audit.recent(20, "provisioner:billing")).map((a) => `${a.action} by ${a.actor.split(":")[0]}`).reverse();
    expect(audit).toEqual(["provisioner.create by cli", "provisioner.update by cli", "provisioner.disable by cli", "provisioner.enable by cli", "provisioner.remove by cli"]);
  });

  it("refuses bad input with one line naming the problem", () => {
    const bad = pki(["provisioner", "add", "bad", "--names", "DNS:*.*.example.com"], t.ca.env);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe("pki: name pattern 'DNS:*.*.example.com' may only use '*' as its whole first label, as in DNS:*.example.com");
    expect(pki(["provisioner", "remove", "nobody"], t.ca.env).stderr.trim()).toBe("pki: no provisioner named 'nobody'");
    expect(pki(["cert", "show", "ZZ"], t.ca.env).stderr.trim()).toBe("pki: 'ZZ' is not a certificate serial (hex, plain or colon-separated)");
    expect(pki(["cert", "show", "01abcdef"], t.ca.env).stderr.trim()).toBe("pki: no certificate with serial 01abcdef");
    // the API answers 400 for these; the CLI says why instead of printing nothing
    const short = pki(["certs", "list", "-q", "ab"], t.ca.env);
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/^pki: .*must be at least 3 characters/);
    expect(pki(["certs", "list", "-q", "ab\u0001c"], t.ca.env).stderr).toMatch(/^pki: .*control characters/);
  });

  it("with no command, prints its help", () => {
    const bare = pki([], t.ca.env);
    expect(bare.status).toBe(0);
    expect(bare.stdout).toMatch(/^Usage: pki /);
    expect(bare.stdout).toMatch(/provisioner/);
  });

  it("--token-out makes the token file owner-only, even over an existing 0644 file", () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "pki-token-")), "token");
    writeFileSync(file, "old\n", { mode: 0o644 });
    chmodSync(file, 0o644);
    const added = pki(["provisioner", "add", "tokenfile", "--names", "DNS:.tokenfile.example", "--token-out", file], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toMatch(/^pkp_[A-Za-z0-9_-]{43}\n$/);
    expect(added.stdout).toBe("");
  });
});
