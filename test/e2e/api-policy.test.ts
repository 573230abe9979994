// What the issuing API refuses, and that a refusal stores and signs nothing: a policy
// matrix per provisioner, lifetimes, profiles, credentials, malformed and oversized input.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApi } from "@pki/api";
import { revokeIntermediate } from "@pki/authority";
import { createLogger } from "@pki/logger";
import { registry } from "@pki/http-kit";
import { addProvisioner, callApi, startTestApi, TravelClock, type RequestOptions, type TestApi } from "../support/api.ts";
import { opensslCsr, opensslVerify, pythonInspect, run } from "../support/tools.ts";

let t: TestApi;
const clock = new TravelClock();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", clock });
  tokens.payments = await addProvisioner(t, {
    name: "payments",
    profiles: ["mtls"],
    names: ["DNS:.payments.example", "IP:10.20.0.0/16", "URI:spiffe://prod.example/ns/payments/*"],
    maxTtlSeconds: 3600,
  });
  tokens.web = await addProvisioner(t, { name: "web", profiles: ["server", "client"], names: ["DNS:*.web.example", "email:@web.example", "CN:web-batch-*"], maxTtlSeconds: 600 });
});
afterAll(async () => {
  await t?.stop();
});

async function issue(provisioner: string, csrPem: string, extra: Record<string, unknown> = {}) {
  return t.call("POST", "/v1/certificates", { token: tokens[provisioner] ?? provisioner, body: { csr: csrPem, ...extra } });
}

/** Runs a request that must be refused and checks nothing but its audit record reached the inventory. */
async function expectRefused(request: () => Promise<{ status: number; json: any; headers: Record<string, unknown> }>, status: number, detail: string | RegExp) {
  const rows = await t.certificateRows();
  const audit = await t.ca.inventory.audit.recent(1);
  const res = await request();
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: "about:blank", status });
  if (typeof detail === "string") expect(res.json.detail).toBe(detail);
  else expect(res.json.detail).toMatch(detail);
  expect(await t.certificateRows()).toBe(rows);
  // The only thing written is, for an authenticated caller, the audit record of the refusal.
  const added = (await t.ca.inventory.audit.recent(5)).filter((a) => a.id > (audit[0]?.id ?? 0n));
  expect(added.length).toBeLessThanOrEqual(1);
  for (const a of added) expect(a).toMatchObject({ outcome: "denied", details: { status } });
  return res;
}

describe("name policy per provisioner", () => {
  const cases: Array<[string, { cn?: string; sans: string[] }, string | null]> = [
    ["payments", { sans: ["DNS:api.payments.example"] }, null],
    ["payments", { sans: ["DNS:a.b.payments.example", "IP:10.20.3.4", "URI:spiffe://prod.example/ns/payments/sa/api"] }, null],
    ["payments", { cn: "api.payments.example", sans: [] }, null],
    ["payments", { sans: ["DNS:evil.example"] }, "SAN DNS:evil.example is not allowed for provisioner 'payments'"],
    ["payments", { sans: ["DNS:api.payments.example", "DNS:api.web.example"] }, "SAN DNS:api.web.example is not allowed for provisioner 'payments'"],
    ["payments", { sans: ["IP:10.21.0.1"] }, "SAN IP:10.21.0.1 is not allowed for provisioner 'payments'"],
    ["payments", { sans: ["URI:spiffe://prod.example/ns/payroll/sa/api"] }, "SAN URI:spiffe://prod.example/ns/payroll/sa/api is not allowed for provisioner 'payments'"],
    ["payments", { cn: "evil.example", sans: ["DNS:api.payments.example"] }, "SAN DNS:evil.example is not allowed for provisioner 'payments'"],
    ["payments", { cn: "Payments Root", sans: ["DNS:api.payments.example"] }, "CN 'Payments Root' is not allowed for provisioner 'payments'"],
    ["web", { sans: ["DNS:www.web.example"] }, null],
    ["web", { sans: ["email:ops@web.example"] }, null],
    ["web", { cn: "web-batch-nightly", sans: ["DNS:batch.web.example"] }, null],
    ["web", { sans: ["DNS:a.b.web.example"] }, "SAN DNS:a.b.web.example is not allowed for provisioner 'web'"],
    ["web", { sans: ["DNS:api.payments.example"] }, "SAN DNS:api.payments.example is not allowed for provisioner 'web'"],
    ["web", { sans: ["email:ops@evil.example"] }, "SAN email:ops@evil.example is not allowed for provisioner 'web'"],
  ];
  it.each(cases)("%s %j → %s", async (provisioner, names, refusal) => {
    const csr = opensslCsr({ subject: names.cn ? `/CN=${names.cn}` : "/", sans: names.sans });
    const profile = provisioner === "web" ? "server" : "mtls";
    if (refusal === null) {
      const res = await issue(provisioner, csr.csrPem, { profile });
      expect(res.status, res.text).toBe(201);
      const row = await t.ca.inventory.certificates.get(res.json.serial);
      expect(row).toMatchObject({ status: "valid", requester: `provisioner:${provisioner}` });
    } else {
      await expectRefused(() => issue(provisioner, csr.csrPem, { profile }), 403, refusal);
      const [latest] = await t.ca.inventory.audit.recent(1);
      expect(latest).toMatchObject({ actor: `provisioner:${provisioner}`, outcome: "denied", details: { reason: refusal } });
    }
  });
});

describe("a name is granted only in its one normal, ASCII spelling", () => {
  it.each([
    "spiffe://prod.example/ns/payments/../admin/sa/x",
    "spiffe://prod.example/ns/payments/./admin/sa/x",
    "spiffe://prod.example/ns/payments/%2e%2e/admin/sa/x",
    "spiffe://prod.example/ns/payments/%2E%2E/admin/sa/x",
    "spiffe://prod.example/ns/payments//admin",
  ])("a URI that leaves its prefix by dot segments is 400: %s", async (uri) => {
    const csr = opensslCsr({ sans: [`URI:${uri}`] });
    await expectRefused(() => issue("payments", csr.csrPem), 400, new RegExp(`^SAN URI:${uri.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} .* \\(not a valid SPIFFE ID\\)$`));
  });

  it.each([
    ["payments", "URI:spiffe://prod.example/ns/payments/caf\u00e9", /^the CSR's URI SAN holds bytes outside ASCII, which an IA5String cannot/],
    ["payments", "URI:spiffe://prod.example/ns/payments/a b", /^SAN URI:spiffe:\/\/prod\.example\/ns\/payments\/a b has a character a URI path may not hold/],
    ["payments", "URI:spiffe://prod.example/ns/payments/<x>", /has a character a URI path may not hold/],
    ["payments", "URI:spiffe://prod.example/ns/payments/a\\\\b", /has a character a URI path may not hold/],
    ["web", "email:caf\u00e9@web.example", /^the CSR's email SAN holds bytes outside ASCII/],
    ["web", "email:a b@web.example", /^SAN email:a b@web\.example is not an e-mail address/],
    ["web", "email:<ops>@web.example", /is not an e-mail address/],
    ["web", "email:a\\\\b@web.example", /is not an e-mail address/],
  ])("%s: %s is 400", async (provisioner, san, detail) => {
    const csr = opensslCsr({ sans: [san] }).csrPem;
    await expectRefused(() => issue(provisioner, csr, { profile: provisioner === "web" ? "client" : "mtls" }), 400, detail);
  });

  it("an e-mail SAN with the special characters RFC 5321 allows is issued and parsed by Python's cryptography", async () => {
    const csr = opensslCsr({ sans: ["email:first.last+ops_1@web.example"] });
    const res = await issue("web", csr.csrPem, { profile: "client" });
    expect(res.status, res.text).toBe(201);
    expect(pythonInspect(res.json.certificate).sans).toEqual(["first.last+ops_1@web.example"]);
  });

  it.each([
    ["web-batch-x.evil.com.", "a trailing dot"],
    ["web-batch-x\u3002evil\u3002com", "ideographic full stops"],
    ["web-batch-x\uff0eevil\uff0ecom", "fullwidth full stops"],
    ["web-batch-x ", "a trailing space"],
  ])("a CN: pattern does not grant %j (%s), which a TLS client could read as a host", async (cn) => {
    const csr = opensslCsr({ subject: `/CN=${cn}` }).csrPem;
    await expectRefused(
      () => issue("web", csr, { profile: "client" }),
      403,
      `CN '${cn}' is not allowed for provisioner 'web': a CN granted by a CN: pattern may hold only 1 to 64 ASCII letters, digits, '-' and '_', so that no TLS client reads it as a host name`,
    );
  });

  it("a CSR named only by a CN that a CN: pattern grants is issued without a SAN for a client profile", async () => {
    const csr = opensslCsr({ subject: "/CN=web-batch-nightly" });
    const res = await issue("web", csr.csrPem, { profile: "client" });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ subject: "CN=web-batch-nightly", sans: [] });
    const seen = pythonInspect(res.json.certificate);
    expect(seen).toMatchObject({ subject: "CN=web-batch-nightly", sans: [] });
    expect(Object.keys(seen.extensions as object)).not.toContain("subjectAltName");
    const chain: string[] = res.json.chain;
    expect(opensslVerify(res.json.certificate, chain.at(-1)!, chain.slice(0, -1).join(""), ["-purpose", "sslclient"]).stdout).toMatch(/: OK/);
    expect(await t.ca.inventory.certificates.get(res.json.serial)).toMatchObject({ status: "valid", subject: "CN=web-batch-nightly", sans: [] });
  });

  it("a CN-only CSR for a TLS server profile is 400, and one no CN: pattern grants is 403", async () => {
    const csr = opensslCsr({ subject: "/CN=web-batch-nightly" }).csrPem;
    await expectRefused(
      () => issue("web", csr, { profile: "server" }),
      400,
      "the server profile includes TLS server authentication, which needs a subjectAltName (TLS clients do not read the CN); add one, or use the client profile for a certificate named only by its CN",
    );
    await expectRefused(() => issue("payments", opensslCsr({ subject: "/CN=batch-x" }).csrPem), 403, "CN 'batch-x' is not allowed for provisioner 'payments'");
  });

  it("a single-label CN in a TLS server certificate needs a DNS SAN beside it, which stops OpenSSL matching the CN as a host", async () => {
    const csr = opensslCsr({ subject: "/CN=web-batch-nightly", sans: ["email:ops@web.example"] }).csrPem;
    await expectRefused(
      () => issue("web", csr, { profile: "server" }),
      400,
      "the CN 'web-batch-nightly' could be taken for a host name by TLS clients that fall back to the CN when a certificate has no DNS SAN, and the server profile includes TLS server authentication; add a DNS SAN, or use the client profile",
    );
    const withDns = await issue("web", opensslCsr({ subject: "/CN=web-batch-nightly", sans: ["DNS:nightly.web.example"] }).csrPem, { profile: "server" });
    expect(withDns.status, withDns.text).toBe(201);
    const checkhost = (name: string) => run("openssl", ["x509", "-noout", "-checkhost", name], { input: withDns.json.certificate }).stdout.trim();
    expect(checkhost("web-batch-nightly")).toBe("Hostname web-batch-nightly does NOT match certificate");
    expect(checkhost("nightly.web.example")).toBe("Hostname nightly.web.example does match certificate");
  });

  it("provisioner patterns are held to the same rules", async () => {
    const make = (names: string[]) => () => t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { name: "spellings", profiles: ["mtls"], names, maxTtlSeconds: 600 } });
    await expectRefused(make(["URI:spiffe://prod.example/ns/../admin/*"]), 400, /^name pattern 'URI:spiffe:\/\/prod\.example\/ns\/\.\.\/admin\/\*' is not usable: .*'\.' or '\.\.' path segment/);
    await expectRefused(make(["URI:https://id.example/caf\u00e9/*"]), 400, /is not usable: .*outside ASCII/);
    await expectRefused(make(["email:<ops>@example.com"]), 400, /^name pattern 'email:<ops>@example\.com' is not an e-mail address/);
    await expectRefused(make(["CN:batch.*"]), 400, /^name pattern 'CN:batch\.\*' is not usable: a CN granted by a CN: pattern may hold only/);
    await expectRefused(make(["CN:batch\u3002runner"]), 400, /is not usable: a CN granted by a CN: pattern may hold only/);
  });
});

describe("lifetimes and profiles", () => {
  it("clips an over-long lifetime to the provisioner's maximum", async () => {
    const res = await issue("payments", opensslCsr({ sans: ["DNS:long.payments.example"] }).csrPem, { ttlSeconds: 90 * 86400 });
    expect(res.status).toBe(201);
    expect((Date.parse(res.json.notAfter) - Date.parse(res.json.notBefore)) / 1000).toBe(3600 + 60);
    const web = await issue("web", opensslCsr({ sans: ["DNS:long.web.example"] }).csrPem, { ttlSeconds: 86400, profile: "client" });
    expect((Date.parse(web.json.notAfter) - Date.parse(web.json.notBefore)) / 1000).toBe(600 + 60);
  });

  it("refuses a profile the provisioner does not have (403) and one that does not exist (400)", async () => {
    const csr = opensslCsr({ sans: ["DNS:p.payments.example"] }).csrPem;
    await expectRefused(() => issue("payments", csr, { profile: "server" }), 403, "profile 'server' is not allowed for provisioner 'payments' (allowed: mtls)");
    await expectRefused(() => issue("payments", csr, { profile: "codesigning" }), 400, "profile: must be one of mtls, server, client");
    await expectRefused(() => issue("payments", csr, { ttlSeconds: -5 }), 400, "ttlSeconds: must be at least 60 seconds (a shorter certificate would expire before it could be used)");
    await expectRefused(() => issue("payments", csr, { ttl: 5 }), 400, "unknown field 'ttl'");
  });
});

describe("credentials", () => {
  const csr = () => opensslCsr({ sans: ["DNS:c.payments.example"] }).csrPem;
  it("no token is 401, a wrong token is 401, a provisioner on an admin route is 403", async () => {
    await expectRefused(() => t.call("POST", "/v1/certificates", { body: { csr: csr() } }), 401, "this route needs 'Authorization: Bearer <provisioner or admin token>'");
    await expectRefused(() => issue("pkp_not-a-real-token", csr()), 401, /the bearer token is not a valid admin or provisioner token/);
    await expectRefused(() => t.call("POST", "/v1/certificates", { headers: { authorization: "Basic Zm9vOmJhcg==" }, body: { csr: csr() } }), 401, "the Authorization header must be 'Bearer <token>'");
    await expectRefused(() => t.call("GET", "/v1/certificates", { token: tokens.payments }), 403, "this route needs an admin token; provisioner:payments may only enrol certificates");
    await expectRefused(
      () => t.call("POST", "/v1/provisioners", { token: tokens.payments, body: { name: "x", profiles: ["mtls"], names: ["DNS:.x.example"], maxTtlSeconds: 60 } }),
      403,
      /needs an admin token/,
    );
  });

  it("provisioner tokens are stored only as SHA-256 hashes", async () => {
    const rows = await t.ca.inventory.sql.query<{ name: string; token_hash: string }>("SELECT name, token_hash FROM provisioners");
    for (const row of rows) expect(row.token_hash).toBe(createHash("sha256").update(tokens[row.name]!).digest("hex"));
    const dump = JSON.stringify(await t.ca.inventory.sql.query("SELECT * FROM provisioners")) + JSON.stringify(await t.ca.inventory.sql.query("SELECT * FROM audit_events"));
    for (const token of Object.values(tokens)) expect(dump).not.toContain(token);
  });

  it("a disabled or removed provisioner stops working at once; its certificates can no longer renew", async () => {
    const token = await addProvisioner(t, { name: "temp", names: ["DNS:.temp.example"] });
    const csr = opensslCsr({ sans: ["DNS:a.temp.example"] });
    const issued = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem } });
    expect(issued.status).toBe(201);
    const clientCert = [issued.json.certificate, ...issued.json.chain.slice(0, -1)].join("");

    const disabled = await t.call("PATCH", "/v1/provisioners/temp", { token: t.ca.adminToken, body: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect(disabled.json.disabled).toBe(true);
    await expectRefused(() => t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem } }), 401, /not a valid admin or provisioner token \(it may have been disabled or removed\)/);
    await expectRefused(
      () => t.call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem }),
      403,
      `provisioner 'temp' that enrolled certificate ${issued.json.serial} has been disabled; its certificates cannot renew`,
    );
    expect((await t.call("PATCH", "/v1/provisioners/temp", { token: t.ca.adminToken, body: { disabled: false } })).status).toBe(200);
    expect((await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem } })).status).toBe(201);

    const removed = await t.call("DELETE", "/v1/provisioners/temp", { token: t.ca.adminToken });
    expect(removed.status).toBe(200);
    await expectRefused(() => t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem } }), 401, /not a valid admin or provisioner token/);
    await expectRefused(() => t.call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem }), 403, /provisioner 'temp' that enrolled certificate [0-9a-f]+ has been removed/);
    expect((await t.call("GET", "/v1/provisioners", { token: t.ca.adminToken })).json.map((p: { name: string }) => p.name)).not.toContain("temp");
    const again = await t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { name: "temp", profiles: ["mtls"], names: ["DNS:.temp.example"], maxTtlSeconds: 600 } });
    expect(again.status).toBe(409);
    expect(again.json.detail).toMatch(/existed and was removed; names are not reused/);

    const audit = (await t.ca.inventory.audit.recent(50, "provisioner:temp")).map((a) => a.action).reverse();
    expect(audit).toEqual(["provisioner.create", "provisioner.disable", "provisioner.enable", "provisioner.remove"]);
    const created = (await t.ca.inventory.audit.recent(50, "provisioner:temp")).find((a) => a.action === "provisioner.create")!;
    expect(created.actor).toMatch(/^admin:/);
    expect(created.sourceIp).toBe("127.0.0.1");
  });

  it("a narrowed policy applies to the next renewal of certificates the provisioner enrolled", async () => {
    const token = await addProvisioner(t, { name: "shrink", names: ["DNS:.s.example", "DNS:.t.example"], maxTtlSeconds: 3600 });
    const enrol = async (name: string) => {
      const csr = opensslCsr({ sans: [`DNS:${name}`] });
      const res = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem, ttlSeconds: 3600 } });
      expect(res.status, res.text).toBe(201);
      return { cert: [res.json.certificate, ...res.json.chain.slice(0, -1)].join(""), key: csr.keyPem, serial: res.json.serial as string };
    };
    const kept = await enrol("x.s.example");
    const dropped = await enrol("x.t.example");
    const patched = await t.call("PATCH", "/v1/provisioners/shrink", { token: t.ca.adminToken, body: { names: ["DNS:.s.example"], maxTtlSeconds: 600 } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json).toMatchObject({ names: ["DNS:.s.example"], maxTtlSeconds: 600, disabled: false });
    await expectRefused(() => t.call("POST", "/v1/certificates/renew", { cert: dropped.cert, key: dropped.key }), 403, "SAN DNS:x.t.example is not allowed for provisioner 'shrink'");
    const renewed = await t.call("POST", "/v1/certificates/renew", { cert: kept.cert, key: kept.key });
    expect(renewed.status, renewed.text).toBe(201);
    expect((Date.parse(renewed.json.notAfter) - Date.parse(renewed.json.notBefore)) / 1000).toBe(600 + 60);
    await expectRefused(() => t.call("PATCH", "/v1/provisioners/shrink", { token: t.ca.adminToken, body: { names: ["DNS:*.*.s.example"] } }), 400, /^name pattern 'DNS:\*\.\*\.s\.example'/);
    await expectRefused(() => t.call("PATCH", "/v1/provisioners/shrink", { token: t.ca.adminToken, body: {} }), 400, "change at least one of disabled, profiles, names, maxTtlSeconds");
    await expectRefused(() => t.call("PATCH", "/v1/provisioners/nobody", { token: t.ca.adminToken, body: { disabled: true } }), 404, "no provisioner named 'nobody'");
    const update = (await t.ca.inventory.audit.recent(10, "provisioner:shrink")).find((a) => a.action === "provisioner.update")!;
    expect(update.details).toMatchObject({ names: ["DNS:.s.example"], maxTtlSeconds: 600 });
  });

  it("bad provisioner definitions are refused with the pattern named", async () => {
    const admin = t.ca.adminToken;
    const make = (body: Record<string, unknown>) => () =>
      t.call("POST", "/v1/provisioners", { token: admin, body: { name: "bad", profiles: ["mtls"], names: ["DNS:.ok.example"], maxTtlSeconds: 600, ...body } });
    const count = async () => Number((await t.ca.inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM provisioners"))[0]!.n);
    const before = await count();
    await expectRefused(make({ names: ["DNS:*.*.example"] }), 400, "name pattern 'DNS:*.*.example' may only use '*' as its whole first label, as in DNS:*.example.com");
    await expectRefused(make({ names: ["IP:10.0.0.0/40"] }), 400, "name pattern 'IP:10.0.0.0/40' has a prefix length that is not 0 to 32");
    await expectRefused(make({ profiles: ["codesigning"] }), 400, "profiles.0: must be one of mtls, server, client");
    await expectRefused(make({ maxTtlSeconds: 10 * 365 * 86400 }), 400, /maxTtlSeconds 315360000 is more than the CA's maximum lifetime/);
    await expectRefused(make({ name: "Has Spaces" }), 400, /provisioner name 'Has Spaces' must be/);
    await expectRefused(make({ names: [] }), 400, "names: needs at least one name pattern");
    expect(await count()).toBe(before);
  });
});

describe("malformed and oversized requests", () => {
  it("garbage, tampered and weak CSRs are 400 with the problem named", async () => {
    await expectRefused(() => issue("payments", "hello, I am not a CSR"), 400, "the CSR is not PEM ('-----BEGIN CERTIFICATE REQUEST-----') or DER");
    const good = opensslCsr({ subject: "/CN=ok.payments.example" });
    const der = Buffer.from(good.csrPem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.indexOf(Buffer.from("ok.payments.example"))] = "x".charCodeAt(0);
    await expectRefused(() => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: der, contentType: "application/pkcs10" }), 400, /^CSR signature does not verify/);
    await expectRefused(() => issue("payments", opensslCsr({ subject: "/CN=weak.payments.example", key: "rsa1024" }).csrPem), 400, /RSA keys must be at least 2048 bits/);
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: Buffer.from("not der at all"), contentType: "application/pkcs10" }),
      400,
      /not a valid PKCS#10 structure|not PEM/,
    );
    await expectRefused(() => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: "{not json", contentType: "application/json" }), 400, "the request body is not valid JSON");
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: "csr=abc", contentType: "text/plain" }),
      415,
      "send the body as application/json or application/pkcs10, not text/plain",
    );
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments }),
      400,
      "POST /v1/certificates needs a request body (Content-Type: application/json, or the DER CSR as application/pkcs10)",
    );
    await expectRefused(() => t.call("POST", "/v1/certificates", { token: tokens.payments, body: {} }), 400, /^csr: is required/);
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments, body: { csr: "x" }, headers: {}, raw: `${JSON.stringify({ csr: "x" })}`, contentType: "application/json; charset=latin1" }),
      415,
      /latin1|unsupported/,
    );
  });

  it("a huge body is 413 before anything else happens", async () => {
    const huge = JSON.stringify({ csr: "A".repeat(2 * 1024 * 1024) });
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: huge, contentType: "application/json" }),
      413,
      /^the request body is \d+ bytes; this endpoint accepts at most 131072 bytes/,
    );
    await expectRefused(
      () => t.call("POST", "/v1/certificates", { token: tokens.payments, raw: Buffer.alloc(200 * 1024, 0x30), contentType: "application/pkcs10" }),
      413,
      /accepts at most 65536 bytes/,
    );
  });

  it("unknown routes and bad query parameters are problem+json too", async () => {
    await expectRefused(() => t.call("GET", "/v1/nothing-here"), 404, "no such resource: GET /v1/nothing-here (see /openapi.json)");
    await expectRefused(() => t.call("GET", "/v1/certificates?limit=5000", { token: t.ca.adminToken }), 400, "query limit: must be at most 1000");
    await expectRefused(() => t.call("GET", "/v1/certificates?q=ab", { token: t.ca.adminToken }), 400, /query q: must be at least 3 characters/);
    await expectRefused(
      () => t.call("GET", "/v1/certificates?cursor=bm9wZQ", { token: t.ca.adminToken }),
      400,
      "query cursor: is not one this API returned (pass nextCursor from the previous page as it is)",
    );
  });
});

describe("time", () => {
  it("an expired certificate cannot renew", async () => {
    const csr = opensslCsr({ sans: ["DNS:short.payments.example"] });
    const res = await issue("payments", csr.csrPem, { ttlSeconds: 600 });
    expect(res.status).toBe(201);
    const clientCert = [res.json.certificate, ...res.json.chain.slice(0, -1)].join("");
    clock.advance(601);
    try {
      await expectRefused(
        () => t.call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem }),
        401,
        /^the client certificate '.*' expired at .*; enrol again with a provisioner token$/,
      );
    } finally {
      clock.advance(-601);
    }
  });
});

describe("rate limiting of failed authentication", () => {
  /** Secret credentials the API process rejected after checking them, so far. */
  const rejectedChecks = async () => (await registry.getSingleMetric("pki_api_credential_checks_total")?.get())?.values.find((v) => v.labels.outcome === "rejected")?.value ?? 0;

  it("past the limit, a source's guesses are checked one at a time at a growing interval, however many it sends at once; credentials that worked from it before pass at once, and a new valid one on its turn", async () => {
    // a second listener on the same CA (SoftHSM allows one configuration per process);
    // the pacing is shortened so the test waits less (the default starts at 0.5 s, up to 10 s)
    const api = await startApi(t.ca.runtime, createLogger("silent"), {
      port: 0,
      host: "127.0.0.1",
      authFailureLimit: 3,
      authFailurePacing: { firstDelayMs: 200, maxDelayMs: 1_000, maxWaitMs: 1_000 },
    });
    const call = (method: string, path: string, o?: RequestOptions) => callApi(api.url, t.rootPem, method, path, o);
    try {
      // the operator worked from this address before the guessing started
      expect((await call("GET", "/v1/certificates?limit=1", { token: t.ca.adminToken })).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await call("GET", "/v1/certificates", { token: `wrong-${i}` })).status).toBe(401);

      const checkedBefore = await rejectedChecks();
      const GUESSES = 40;
      const burst = await Promise.all(Array.from({ length: GUESSES }, (_, i) => call("GET", "/v1/certificates", { token: `guess-${i}` })));
      expect(burst.map((r) => r.status)).toEqual(Array(GUESSES).fill(429));
      // Before, every one of them was checked. Now: one per turn, turns at most a second
      // ahead and 200 ms apart at first (6), with slack for a slow machine's arrivals.
      const checked = (await rejectedChecks()) - checkedBefore;
      expect(checked).toBeGreaterThanOrEqual(1);
      expect(checked).toBeLessThanOrEqual(10);
      const unchecked = burst.find((r) => /this credential was not checked/.test(r.json.detail));
      expect(unchecked?.json.detail).toMatch(
        /^too many failed authentications from 127.0.0.1; this credential was not checked: try again in \d+ s \(credentials from this address are now checked one at a time, at a growing interval; one already accepted from it is checked at once\)$/,
      );
      expect(Number(unchecked?.headers["retry-after"])).toBeGreaterThan(0);

      // the operator's token, accepted from here before, passes at once
      expect((await call("GET", "/v1/certificates?limit=1", { token: t.ca.adminToken })).status).toBe(200);
      // a client certificate cannot be guessed: renewals are never paced
      const csr = opensslCsr({ sans: ["DNS:nat.payments.example"] });
      const first = await t.call("POST", "/v1/certificates", { token: tokens.payments, body: { csr: csr.csrPem } });
      expect(first.status, first.text).toBe(201);
      const clientCert = [first.json.certificate, ...first.json.chain.slice(0, -1)].join("");
      expect((await call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem })).status).toBe(201);
      // a valid token not seen from here yet is checked on its turn (Retry-After tells when)
      let enrolled = await call("POST", "/v1/certificates", { token: tokens.payments, body: { csr: csr.csrPem } });
      for (let tries = 0; enrolled.status === 429 && tries < 10; tries++) {
        await new Promise((resolve) => setTimeout(resolve, Number(enrolled.headers["retry-after"]) * 1000));
        enrolled = await call("POST", "/v1/certificates", { token: tokens.payments, body: { csr: csr.csrPem } });
      }
      expect(enrolled.status, enrolled.text).toBe(201);
      // and failures keep being refused
      expect((await call("GET", "/v1/certificates", { token: "wrong-4" })).status).toBe(429);
      // routes without authentication still answer
      expect((await call("GET", "/v1/issuers")).status).toBe(200);
    } finally {
      await api.stop();
    }
  });
});

// Last in this file: it revokes the intermediate everything above was issued by.
describe("a revoked intermediate", () => {
  it("stops its certificates authenticating over mTLS at once", async () => {
    const csr = opensslCsr({ sans: ["DNS:orphan.payments.example"] });
    const res = await issue("payments", csr.csrPem);
    expect(res.status).toBe(201);
    const clientCert = [res.json.certificate, ...res.json.chain.slice(0, -1)].join("");
    const issuerId = res.json.issuerId as string;
    await revokeIntermediate(t.ca.config(), t.ca.inventory, clock, { issuerId, reason: "keyCompromise", actor: "test" });
    await expectRefused(
      () => t.call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem }),
      401,
      new RegExp(`^the intermediate ${issuerId} that issued the client certificate .* was revoked at `),
    );
  });
});
