// A service's life through the issuing API over real HTTPS: enrol with a provisioner
// token, renew forever over mTLS with no secret, be revoked, be found in the inventory.
// Results are checked with OpenSSL and Python's `cryptography`, not with our own parser.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addProvisioner, runAsync, startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr, opensslVerify, pythonInspect, run, scratchDir, writeTemp } from "../support/tools.ts";

let t: TestApi;
let token: string;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
  token = await addProvisioner(t, { name: "payments", profiles: ["mtls", "client"], names: ["DNS:.payments.svc.example", "URI:spiffe://prod.example/ns/payments/*"], maxTtlSeconds: 7200 });
});
afterAll(async () => {
  await t?.stop();
});

const chainOf = (body: { chain: string[] }) => ({ intermediates: body.chain.slice(0, -1).join(""), root: body.chain[body.chain.length - 1]! });

describe("enrolment with a provisioner token", () => {
  it("lists the issuers without authentication", async () => {
    const res = await t.call("GET", "/v1/issuers");
    expect(res.status).toBe(200);
    expect(res.json.map((i: { role: string; status: string }) => `${i.role}:${i.status}`).sort()).toEqual(["intermediate:active", "root:active"]);
    const root = res.json.find((i: { role: string }) => i.role === "root");
    expect(new X509Certificate(root.certificate).fingerprint256).toBe(new X509Certificate(t.rootPem).fingerprint256);
  });

  it("issues for a PEM CSR in JSON; OpenSSL and Python accept the certificate", async () => {
    const csr = opensslCsr({ subject: "/CN=api.payments.svc.example", sans: ["DNS:api.payments.svc.example", "URI:spiffe://prod.example/ns/payments/sa/api"] });
    const res = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem, ttlSeconds: 3600, autoRenew: true } });
    expect(res.status, res.text).toBe(201);
    expect(res.json.profile).toBe("mtls");
    expect(res.json.serial).toMatch(/^[0-9a-f]{34}$/);
    const { intermediates, root } = chainOf(res.json);
    expect(root).toBe(t.rootPem.trim() + "\n");
    const verified = opensslVerify(res.json.certificate, root, intermediates, ["-purpose", "sslclient"]);
    expect(verified.stdout + verified.stderr).toMatch(/: OK/);
    const seen = pythonInspect(res.json.certificate);
    expect(seen.serial).toBe(res.json.serial.replace(/^0+/, ""));
    expect(seen.sans).toEqual(["api.payments.svc.example", "spiffe://prod.example/ns/payments/sa/api"]);
    expect(String((seen.extensions as Record<string, { value: string }>).extendedKeyUsage!.value)).toMatch(/serverAuth.*clientAuth/);
    const lifetime = (Date.parse(res.json.notAfter) - Date.parse(res.json.notBefore)) / 1000;
    expect(lifetime).toBe(3600 + 60); // requested, plus the backdate
    const row = await t.ca.inventory.certificates.get(res.json.serial);
    expect(row).toMatchObject({ status: "valid", requester: "provisioner:payments", autoRenew: true });
    const audit = await t.ca.inventory.audit.recent(5, res.json.serial);
    expect(audit.find((a) => a.action === "certificate.issue")).toMatchObject({ actor: "provisioner:payments", sourceIp: "127.0.0.1", outcome: "ok" });
  });

  it("issues for a DER CSR sent as application/pkcs10, options in the query", async () => {
    const csr = opensslCsr({ sans: ["DNS:batch.payments.svc.example"] });
    const der = Buffer.from(csr.csrPem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const res = await t.call("POST", "/v1/certificates?profile=client&ttlSeconds=600", { token, raw: der, contentType: "application/pkcs10" });
    expect(res.status, res.text).toBe(201);
    expect(res.json.profile).toBe("client");
    expect(res.json.subject).toBe("");
    expect((Date.parse(res.json.notAfter) - Date.parse(res.json.notBefore)) / 1000).toBe(660);
    const inspected = pythonInspect(res.json.certificate);
    expect((inspected.extensions as Record<string, { critical: boolean }>).subjectAltName!.critical).toBe(true);
  });

  it("also with curl, as the README shows", async () => {
    const dir = scratchDir();
    const csr = opensslCsr({ subject: "/CN=curl.payments.svc.example", dir });
    const rootFile = writeTemp("root.pem", t.rootPem, dir);
    const body = writeTemp("body.json", JSON.stringify({ csr: csr.csrPem }), dir);
    const out = await runAsync("curl", ["-sS", "--fail-with-body", "--cacert", rootFile, "-H", `Authorization: Bearer ${token}`, "-H", "Content-Type: application/json", "--data-binary", `@${body}`, `${t.api.url}/v1/certificates`]);
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).sans).toEqual(["DNS:curl.payments.svc.example"]);
  });
});
