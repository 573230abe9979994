// The inventory through the API (filters, cursor pagination, one certificate), the
// OpenAPI document (valid 3.1, the same routes as the code, answers that match it) and
// the listener's own TLS (CA-issued certificate, TLS 1.2+, renewed in place).
import { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiRoutes, createApiApp, startApi } from "@pki/api";
import { createLogger } from "@pki/logger";
import { addProvisioner, runAsync, startTestApi, TravelClock, type ApiResponse, type TestApi } from "../support/api.ts";
import { opensslCsr, scratchDir, writeTemp } from "../support/tools.ts";

let t: TestApi;
let token: string;
let doc: any;
const issued: Array<{ serial: string; profile: string; name: string }> = [];

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
  token = await addProvisioner(t, { name: "inventory", profiles: ["mtls", "client"], names: ["DNS:.inv.example"], maxTtlSeconds: 86400 });
  // twelve certificates with distinct lifetimes, so the sort order is known
  for (let i = 0; i < 12; i++) {
    const name = `${i % 3 === 0 ? "alpha" : "beta"}-${i}.inv.example`;
    const profile = i % 4 === 0 ? "client" : "mtls";
    const res = await t.call("POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: [`DNS:${name}`] }).csrPem, profile, ttlSeconds: 3600 + i * 60 } });
    expect(res.status).toBe(201);
    issued.push({ serial: res.json.serial, profile, name });
  }
  for (const i of [2, 5]) expect((await t.call("POST", `/v1/certificates/${issued[i]!.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "superseded" } })).status).toBe(200);
  doc = (await t.call("GET", "/openapi.json")).json;
});
afterAll(async () => {
  await t?.stop();
});

const admin = (path: string) => t.call("GET", path, { token: t.ca.adminToken });
const listed = (res: ApiResponse) => res.json.items.map((c: { serial: string }) => c.serial);
/** the test's own certificates only (the listener's certificate is in the inventory too) */
const ours = (serials: string[]) => serials.filter((s) => issued.some((c) => c.serial === s));

describe("inventory", () => {
  it("filters by status, profile, text, issuer and expiry window", async () => {
    expect(listed(await admin("/v1/certificates?status=revoked"))).toEqual([issued[2]!.serial, issued[5]!.serial]);
    const clients = ours(listed(await admin("/v1/certificates?profile=client")));
    expect(clients).toEqual(issued.filter((c) => c.profile === "client").map((c) => c.serial));
    expect(ours(listed(await admin("/v1/certificates?q=ALPHA")))).toEqual(issued.filter((c) => c.name.startsWith("alpha")).map((c) => c.serial));
    expect(listed(await admin("/v1/certificates?q=beta-7.inv"))).toEqual([issued[7]!.serial]);
    // plain text: LIKE's wildcards in q match only themselves
    expect(listed(await admin(`/v1/certificates?q=${encodeURIComponent("beta_7.inv")}`))).toEqual([]);
    expect(listed(await admin(`/v1/certificates?q=${encodeURIComponent("%%%")}`))).toEqual([]);
    const valid = ours(listed(await admin("/v1/certificates?status=valid&q=inv.example")));
    expect(valid).toHaveLength(10);
    const issuerId = (await admin(`/v1/certificates/${issued[0]!.serial}`)).json.issuerId;
    expect(ours(listed(await admin(`/v1/certificates?issuerId=${issuerId}&limit=1000`)))).toHaveLength(12);
    expect(listed(await admin(`/v1/certificates?issuerId=nope`))).toEqual([]);
    const notAfter = (i: number) => (t.ca.inventory.certificates.get(issued[i]!.serial) as Promise<{ notAfter: Date }>).then((r) => r.notAfter);
    const windowed = ours(listed(await admin(`/v1/certificates?expiresAfter=${(await notAfter(3)).toISOString()}&expiresBefore=${(await notAfter(7)).toISOString()}`)));
    expect(windowed).toEqual([4, 5, 6].map((i) => issued[i]!.serial));
  });

  it("pages with a stable cursor, soonest expiry first, while certificates keep being issued", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: ApiResponse = await admin(`/v1/certificates?q=inv.example&limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...listed(res));
      cursor = res.json.nextCursor;
      pages++;
      if (pages === 1) {
        // a new certificate expiring later than everything lands on a later page, exactly once
        const late = await t.call("POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: ["DNS:late.inv.example"] }).csrPem, ttlSeconds: 80000 } });
        issued.push({ serial: late.json.serial, profile: "mtls", name: "late.inv.example" });
      }
    } while (cursor);
    expect(seen).toEqual(issued.map((c) => c.serial));
    expect(pages).toBe(3);
  });

  it("shows one certificate with status, revocation, names and PEM", async () => {
    const res = await admin(`/v1/certificates/${issued[5]!.serial}`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ serial: issued[5]!.serial, status: "revoked", revocationReason: "superseded", sans: ["DNS:beta-5.inv.example"], requester: "provisioner:inventory" });
    expect(new X509Certificate(res.json.certificate).serialNumber.toLowerCase()).toBe(issued[5]!.serial);
    expect((await admin(`/v1/certificates/01${"cd".repeat(16)}`)).status).toBe(404);
  });
});

describe("OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("describes exactly the routes express serves, with mutualTLS where a client certificate is accepted", () => {
    const app = createApiApp(t.ca.runtime, createLogger("silent"));
    const served = (app as unknown as { router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> } }).router.stack
      .filter((layer) => layer.route)
      .flatMap((layer) => Object.keys(layer.route!.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path.replace(/:(\w+)/g, "{$1}")}`))
      .sort();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(served);
    expect(doc.components.securitySchemes.mutualTLS).toEqual(expect.objectContaining({ type: "mutualTLS" }));
    expect(doc.paths["/v1/certificates/renew"].post.security).toEqual([{ mutualTLS: [] }]);
    expect(doc.paths["/v1/certificates/{serial}/revoke"].post.security).toContainEqual({ mutualTLS: [] });
    expect(doc.paths["/v1/certificates"].post.requestBody.content).toHaveProperty("application/pkcs10");
    expect(apiRoutes(t.ca.runtime).every((r) => r.problems.every((s) => doc.paths[r.path][r.method].responses[s]))).toBe(true);
  });

  it("matches what the API answers", async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(doc.components.schemas.Problem, "#/components/schemas/Problem");
    const check = (res: ApiResponse, path: string, method: string) => {
      const media = String(res.headers["content-type"]).split(";")[0]!;
      const spec = doc.paths[path][method].responses[String(res.status)];
      expect(spec, `${method} ${path} ${res.status} is not documented`).toBeDefined();
      const schema = spec.content[media]?.schema;
      expect(schema, `${method} ${path} ${res.status} ${media} is not documented`).toBeDefined();
      const validate = schema.$ref ? ajv.getSchema(schema.$ref)! : ajv.compile(schema);
      expect(validate(res.json), JSON.stringify(validate.errors)).toBe(true);
    };
    check(await t.call("GET", "/v1/issuers"), "/v1/issuers", "get");
    check(await admin("/v1/certificates?limit=3"), "/v1/certificates", "get");
    check(await admin(`/v1/certificates/${issued[5]!.serial}`), "/v1/certificates/{serial}", "get");
    check(await admin(`/v1/certificates/01${"cd".repeat(16)}`), "/v1/certificates/{serial}", "get");
    check(await t.call("GET", "/v1/provisioners", { token: t.ca.adminToken }), "/v1/provisioners", "get");
    check(
      await t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { name: "doc", profiles: ["client"], names: ["email:@doc.example"], maxTtlSeconds: 600 } }),
      "/v1/provisioners",
      "post",
    );
    // the operator-task routes (their bodies are what the console renders)
    check(await t.call("POST", "/v1/scheduler/jobs/issuer-health/run", { token: t.ca.adminToken }), "/v1/scheduler/jobs/{job}/run", "post");
    check(await t.call("POST", "/v1/scheduler/jobs/no-such-job/run", { token: t.ca.adminToken }), "/v1/scheduler/jobs/{job}/run", "post");
    check(await admin("/v1/scheduler"), "/v1/scheduler", "get");
    check(await t.call("POST", "/v1/crls/publish", { token: t.ca.adminToken, body: {} }), "/v1/crls/publish", "post");
    check(await admin("/v1/crls"), "/v1/crls", "get");
    check(await admin("/v1/doctor"), "/v1/doctor", "get");
    check(await t.call("POST", "/v1/admins", { token: t.ca.adminToken, body: { name: "doc" } }), "/v1/admins", "post");
    check(await admin("/v1/admins"), "/v1/admins", "get");
    check(await t.call("DELETE", "/v1/admins/doc", { token: t.ca.adminToken }), "/v1/admins/{name}", "delete");
    const csr = opensslCsr({ sans: ["DNS:doc.inv.example"] });
    const created = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem } });
    check(created, "/v1/certificates", "post");
    const clientCert = [created.json.certificate, ...created.json.chain.slice(0, -1)].join("");
    check(await t.call("POST", "/v1/certificates/renew", { cert: clientCert, key: csr.keyPem }), "/v1/certificates/renew", "post");
    check(await t.call("POST", "/v1/certificates/renew"), "/v1/certificates/renew", "post");
    check(await t.call("POST", `/v1/certificates/${created.json.serial}/revoke`, { token: t.ca.adminToken }), "/v1/certificates/{serial}/revoke", "post");
    check(await t.call("POST", `/v1/certificates/${created.json.serial}/revoke`, { token: t.ca.adminToken }), "/v1/certificates/{serial}/revoke", "post");
    check(await t.call("POST", "/v1/certificates", { token, body: { csr: "nope" } }), "/v1/certificates", "post");
  });
});

describe("the listener's own TLS", () => {
  it("serves a certificate from this CA for 127.0.0.1 and localhost, recorded in the inventory", async () => {
    const cert = t.api.certificate();
    expect(cert.profile).toBe("server");
    expect(cert.sans).toEqual(expect.arrayContaining(["DNS:localhost", "IP:127.0.0.1"]));
    const row = await t.ca.inventory.certificates.get(cert.serial);
    expect(row).toMatchObject({ requester: "api:listener", status: "valid" });
    const dir = scratchDir();
    const out = await runAsync("curl", ["-sS", "--fail-with-body", "--cacert", writeTemp("root.pem", t.rootPem, dir), `https://localhost:${t.api.port}/v1/issuers`]);
    expect(out.status, out.stderr).toBe(0);
  });

  it("speaks TLS 1.2 and 1.3 but not 1.1", async () => {
    const dir = scratchDir();
    const root = writeTemp("root.pem", t.rootPem, dir);
    const attempt = (version: string) => runAsync("openssl", ["s_client", "-connect", `127.0.0.1:${t.api.port}`, `-${version}`, "-CAfile", root, "-verify_return_error"], { input: "" });
    expect((await attempt("tls1_3")).stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect((await attempt("tls1_2")).stdout).toMatch(/Protocol *: TLSv1.2|TLSv1.2/);
    const old = await attempt("tls1_1");
    expect(old.status).not.toBe(0);
    expect(old.stdout).toMatch(/no peer certificate available/);
    expect(old.stdout).toMatch(/Cipher is \(NONE\)/);
  });

  it("renews its certificate in place; new connections get the new one", async () => {
    const before = t.api.certificate().serial;
    const renewed = await t.api.renewTlsCertificate();
    expect(renewed.serial).not.toBe(before);
    const served = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port: t.api.port, ca: t.rootPem }, () => {
        resolve(socket.getPeerX509Certificate()!.serialNumber.toLowerCase());
        socket.end();
      });
      socket.on("error", reject);
    });
    expect(served).toBe(renewed.serial);
  });

  it("renews its certificate by itself once two thirds of its lifetime have passed", async () => {
    const clock = new TravelClock();
    // only the listener's view of time travels; the CA keeps issuing on the real clock
    const runtime = { ...t.ca.runtime, clock };
    const api = await startApi(runtime, createLogger("silent"), { port: 0, host: "127.0.0.1", renewalCheckMs: 50 });
    try {
      const first = api.certificate();
      const lifetime = (first.notAfter.getTime() - first.notBefore.getTime()) / 1000;
      clock.advance(lifetime * 0.5);
      expect(api.certificate().serial).toBe(first.serial);
      clock.advance(lifetime * 0.2);
      // wait for the event, not for a time: the timer looks at the clock every 50 ms
      let renewed = api.certificate();
      for (let i = 0; i < 400 && renewed.serial === first.serial; i++) {
        await new Promise((r) => setTimeout(r, 50));
        renewed = api.certificate();
      }
      expect(renewed.serial).not.toBe(first.serial);
      clock.advance(-lifetime * 0.7); // back to real time, so the new certificate is not due at once
      const servedSerial = () =>
        new Promise<string>((resolve, reject) => {
          const socket = tlsConnect({ host: "127.0.0.1", port: api.port, ca: t.rootPem }, () => {
            resolve(socket.getPeerX509Certificate()!.serialNumber.toLowerCase());
            socket.end();
          });
          socket.on("error", reject);
        });
      // While the clock was ahead every new certificate was due at once, so one renewal may
      // still be in flight and switch the listener after a handshake: ask until the served
      // certificate is the listener's current one (no renewal starts now the clock is back).
      let served = await servedSerial();
      for (let i = 0; i < 20 && served !== api.certificate().serial; i++) {
        await new Promise((r) => setTimeout(r, 100));
        served = await servedSerial();
      }
      expect(served).not.toBe(first.serial);
      expect(served).toBe(api.certificate().serial);
      expect((await t.ca.inventory.certificates.get(served))!.requester).toBe("api:listener");
    } finally {
      await api.stop();
    }
  });

  it("refuses to start on a port that is taken, with the reason", async () => {
    await expect(startApi(t.ca.runtime, createLogger("silent"), { port: t.api.port, host: "127.0.0.1" })).rejects.toThrow(`port ${t.api.port} on 127.0.0.1 is already in use`);
  });
});
