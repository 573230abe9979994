// A service's life through the issuing API over real HTTPS: enrol with a provisioner
// token, renew forever over mTLS with no secret, be revoked, be found in the inventory.
// Results are checked with OpenSSL and Python's `cryptography`, not with our own parser.
import { X509Certificate } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer as createNetServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registry } from "@pki/http-kit";
import { addProvisioner, runAsync, startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr, opensslSelfSigned, opensslVerify, pythonInspect, run, scratchDir, writeTemp } from "../support/tools.ts";

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
    expect(root).toBe(`${t.rootPem.trim()}\n`);
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
    expect(await registry.metrics()).toMatch(/pki_api_operations_total\{operation="issueCertificate",caller="provisioner",outcome="ok"\} [1-9]/);
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
    const out = await runAsync("curl", [
      "-sS",
      "--fail-with-body",
      "--cacert",
      rootFile,
      "-H",
      `Authorization: Bearer ${token}`,
      "-H",
      "Content-Type: application/json",
      "--data-binary",
      `@${body}`,
      `${t.api.url}/v1/certificates`,
    ]);
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).sans).toEqual(["DNS:curl.payments.svc.example"]);
  });
});

/** Enrols a fresh key for the given names; returns what a service keeps on disk. */
async function enrol(names: string[], options: { profile?: string; ttlSeconds?: number; cn?: string; with?: string } = {}) {
  const csr = opensslCsr({ subject: options.cn ? `/CN=${options.cn}` : "/", sans: names });
  const res = await t.call("POST", "/v1/certificates", { token: options.with ?? token, body: { csr: csr.csrPem, profile: options.profile, ttlSeconds: options.ttlSeconds ?? 3600 } });
  expect(res.status, res.text).toBe(201);
  return {
    serial: res.json.serial as string,
    key: csr.keyPem,
    keyPath: csr.keyPath,
    cert: res.json.certificate as string,
    chain: res.json.chain as string[],
    clientCert: [res.json.certificate, ...res.json.chain.slice(0, -1)].join(""),
  };
}

describe("renewal over mTLS, with no secret", () => {
  it("renews with the current certificate, again and again; each old certificate records its successor", async () => {
    const first = await enrol(["DNS:orders.payments.svc.example"]);
    let current = first;
    const serials = [first.serial];
    for (let i = 0; i < 3; i++) {
      const res = await t.call("POST", "/v1/certificates/renew", { cert: current.clientCert, key: current.key });
      expect(res.status, res.text).toBe(201);
      expect(res.json.serial).not.toBe(current.serial);
      expect(res.json.sans).toEqual(["DNS:orders.payments.svc.example"]);
      expect(res.json.profile).toBe("mtls");
      expect((Date.parse(res.json.notAfter) - Date.parse(res.json.notBefore)) / 1000).toBe(3660);
      // same key: a renewal without a CSR keeps the key
      expect(
        new X509Certificate(res.json.certificate).publicKey.export({ format: "der", type: "spki" }).equals(new X509Certificate(current.cert).publicKey.export({ format: "der", type: "spki" })),
      ).toBe(true);
      const old = await t.ca.inventory.certificates.get(current.serial);
      expect(old!.successorSerial).toBe(res.json.serial);
      const renewed = await t.ca.inventory.certificates.get(res.json.serial);
      expect(renewed).toMatchObject({ predecessorSerial: current.serial, requester: `mtls:${current.serial}`, provisionerId: old!.provisionerId });
      const audit = await t.ca.inventory.audit.recent(5, res.json.serial);
      expect(audit.find((a) => a.action === "certificate.renew")).toMatchObject({ actor: `mtls:${current.serial}`, sourceIp: "127.0.0.1" });
      current = { ...current, serial: res.json.serial, cert: res.json.certificate, clientCert: [res.json.certificate, ...res.json.chain.slice(0, -1)].join("") };
      serials.push(res.json.serial);
    }
    expect(new Set(serials).size).toBe(4);
  });

  it("changes the key with a new CSR for the same names, and refuses new names", async () => {
    const current = await enrol(["DNS:ledger.payments.svc.example"], { cn: "ledger.payments.svc.example" });
    const rekey = opensslCsr({ subject: "/CN=ledger.payments.svc.example", sans: ["DNS:ledger.payments.svc.example"], key: "rsa2048" });
    const res = await t.call("POST", "/v1/certificates/renew", { cert: current.clientCert, key: current.key, body: { csr: rekey.csrPem } });
    expect(res.status, res.text).toBe(201);
    const issuedKey = new X509Certificate(res.json.certificate).publicKey.export({ format: "pem", type: "spki" });
    const csrKey = run("openssl", ["req", "-in", rekey.csrPath, "-noout", "-pubkey"]).stdout;
    expect(issuedKey).toBe(csrKey);

    const before = await t.certificateRows();
    const wider = opensslCsr({ subject: "/CN=ledger.payments.svc.example", sans: ["DNS:ledger.payments.svc.example", "DNS:admin.payments.svc.example"] });
    const refused = await t.call("POST", "/v1/certificates/renew", { cert: current.clientCert, key: current.key, body: { csr: wider.csrPem } });
    expect(refused.status).toBe(400);
    expect(refused.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(refused.json.detail).toMatch(
      /a renewal keeps the names of certificate [0-9a-f]+ \(CN=ledger.payments.svc.example, DNS:ledger.payments.svc.example\); the CSR asks for .*DNS:admin.payments.svc.example/,
    );
    expect(await t.certificateRows()).toBe(before);
  });

  it("is refused without a client certificate, or with one this CA did not issue", async () => {
    const before = await t.certificateRows();
    const none = await t.call("POST", "/v1/certificates/renew");
    expect(none.status).toBe(401);
    expect(none.json.detail).toMatch(/needs a client certificate issued by this CA/);

    const stranger = opensslSelfSigned({ subject: "/CN=orders.payments.svc.example" });
    const foreign = await t.call("POST", "/v1/certificates/renew", { cert: stranger.certPem, key: stranger.keyPem });
    expect(foreign.status).toBe(401);
    expect(foreign.json.detail).toMatch(/was not issued by any of this CA's intermediates/);
    expect(await t.certificateRows()).toBe(before);
  });

  it("refuses a certificate of this CA that is not for TLS clients: a server-only one is 401 naming its extended key usage, and renews nothing", async () => {
    const serverOnly = await enrol(["DNS:web-only.payments.svc.example"], { profile: "server", with: t.ca.adminToken });
    const before = await t.certificateRows();
    const refused = await t.call("POST", "/v1/certificates/renew", { cert: serverOnly.clientCert, key: serverOnly.key });
    expect(refused.status, refused.text).toBe(401);
    expect(refused.json.detail).toBe(
      `the client certificate ${serverOnly.serial} is not for TLS clients (extended key usage 1.3.6.1.5.5.7.3.1 lacks clientAuth 1.3.6.1.5.5.7.3.2): use one from the mtls or client profile; a server-only certificate is enrolled again with a provisioner token or through ACME`,
    );
    expect(await t.certificateRows()).toBe(before);
    // The client profile (clientAuth only) renews as the mtls one does.
    const clientOnly = await enrol(["DNS:client-only.payments.svc.example"], { profile: "client", with: t.ca.adminToken });
    const renewed = await t.call("POST", "/v1/certificates/renew", { cert: clientOnly.clientCert, key: clientOnly.key });
    expect(renewed.status, renewed.text).toBe(201);
    expect(renewed.json.profile).toBe("client");
  });

  it("also with curl --cert/--key", async () => {
    const current = await enrol(["DNS:curl-renew.payments.svc.example"]);
    const dir = scratchDir();
    const out = await runAsync("curl", [
      "-sS",
      "--fail-with-body",
      "--cacert",
      writeTemp("root.pem", t.rootPem, dir),
      "--cert",
      writeTemp("cert.pem", current.clientCert, dir),
      "--key",
      current.keyPath,
      "-X",
      "POST",
      `${t.api.url}/v1/certificates/renew`,
    ]);
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ sans: ["DNS:curl-renew.payments.svc.example"] });
    expect((await t.ca.inventory.certificates.get(current.serial))!.successorSerial).toBe(JSON.parse(out.stdout).serial);
  });
});

describe("revocation", () => {
  it("a certificate revokes itself over mTLS; it then cannot renew; revoking twice is 409", async () => {
    const svc = await enrol(["DNS:stolen.payments.svc.example"]);
    const other = await enrol(["DNS:bystander.payments.svc.example"]);
    const notMine = await t.call("POST", `/v1/certificates/${other.serial}/revoke`, { cert: svc.clientCert, key: svc.key, body: { reason: "keyCompromise" } });
    expect(notMine.status).toBe(403);
    expect(notMine.json.detail).toBe(`a client certificate may only revoke itself: you presented ${svc.serial}, not ${other.serial}`);
    expect((await t.ca.inventory.certificates.get(other.serial))!.status).toBe("valid");

    const res = await t.call("POST", `/v1/certificates/${svc.serial}/revoke`, { cert: svc.clientCert, key: svc.key, body: { reason: "keyCompromise" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ serial: svc.serial, status: "revoked", reason: "keyCompromise" });
    // in the inventory before the answer
    const row = await t.ca.inventory.certificates.get(svc.serial);
    expect(row).toMatchObject({ status: "revoked", revocationReason: 1 });
    expect(row!.revokedAt!.toISOString()).toBe(res.json.revokedAt);
    const audit = await t.ca.inventory.audit.recent(5, svc.serial);
    expect(audit.find((a) => a.action === "certificate.revoke")).toMatchObject({ actor: `mtls:${svc.serial}`, sourceIp: "127.0.0.1" });

    const before = await t.certificateRows();
    const renew = await t.call("POST", "/v1/certificates/renew", { cert: svc.clientCert, key: svc.key });
    expect(renew.status).toBe(401);
    expect(renew.json.detail).toMatch(new RegExp(`the client certificate ${svc.serial} was revoked at .* \\(keyCompromise\\)`));
    expect(await t.certificateRows()).toBe(before);

    const again = await t.call("POST", `/v1/certificates/${svc.serial}/revoke`, { token: t.ca.adminToken, body: {} });
    expect(again.status).toBe(409);
    expect(again.json.detail).toBe(`certificate ${svc.serial} is already revoked`);
  });

  it("an admin revokes any certificate; bad reasons and unknown serials are named", async () => {
    const svc = await enrol(["DNS:retired.payments.svc.example"]);
    const badReason = await t.call("POST", `/v1/certificates/${svc.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "because" } });
    expect(badReason.status).toBe(400);
    expect(badReason.json.detail).toMatch(/^reason: must be one of unspecified, keyCompromise/);
    const provisionerTry = await t.call("POST", `/v1/certificates/${svc.serial}/revoke`, { token, body: {} });
    expect(provisionerTry.status).toBe(403);
    const res = await t.call("POST", `/v1/certificates/${svc.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "cessationOfOperation" } });
    expect(res.status).toBe(200);
    expect(res.json.reason).toBe("cessationOfOperation");
    const audit = await t.ca.inventory.audit.recent(5, svc.serial);
    expect(audit.find((a) => a.action === "certificate.revoke" && a.outcome === "ok")!.actor).toMatch(/^admin:/);
    // the admin's refused try (a bad reason) is recorded under the same action, denied
    expect(audit.filter((a) => a.action === "certificate.revoke" && a.outcome === "denied").map((a) => a.actor.split(":")[0])).toEqual(["admin"]);
    const unknown = await t.call("POST", `/v1/certificates/01${"ab".repeat(16)}/revoke`, { token: t.ca.adminToken });
    expect(unknown.status).toBe(404);
    const malformed = await t.call("POST", `/v1/certificates/XYZ/revoke`, { token: t.ca.adminToken });
    expect(malformed.status).toBe(400);
    expect(malformed.json.detail).toMatch(/serial: must be the certificate serial in hex: plain in any case .* or colon-separated bytes/);
  });
});

describe("two services doing mutual TLS with certificates from the API", () => {
  it("openssl s_server -Verify and s_client accept each other", async () => {
    const server = await enrol(["DNS:gateway.payments.svc.example"], { profile: "mtls" });
    const client = await enrol(["URI:spiffe://prod.example/ns/payments/sa/worker"], { profile: "client" });
    const dir = scratchDir();
    const root = writeTemp("root.pem", t.rootPem, dir);
    const port = await freePort();
    const s = spawn(
      "openssl",
      [
        "s_server",
        "-accept",
        String(port),
        "-naccept",
        "1",
        "-cert",
        writeTemp("server.pem", server.cert, dir),
        "-cert_chain",
        writeTemp("server-chain.pem", server.chain.slice(0, -1).join(""), dir),
        "-key",
        server.keyPath,
        "-CAfile",
        root,
        "-Verify",
        "2",
        "-verify_return_error",
        "-www",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise((resolve) => s.once("close", resolve)); // before s_server can exit
    const serverOut: Buffer[] = [];
    s.stdout.on("data", (c: Buffer) => serverOut.push(c));
    s.stderr.on("data", (c: Buffer) => serverOut.push(c));
    try {
      await waitForAccept(s);
      const out = await runAsync(
        "timeout",
        [
          "20",
          "openssl",
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-servername",
          "gateway.payments.svc.example",
          "-verify_hostname",
          "gateway.payments.svc.example",
          "-CAfile",
          root,
          "-verify_return_error",
          "-cert",
          writeTemp("client.pem", client.cert, dir),
          "-cert_chain",
          writeTemp("client-chain.pem", client.chain.slice(0, -1).join(""), dir),
          "-key",
          client.keyPath,
          "-ign_eof",
        ],
        { input: "GET / HTTP/1.0\r\n\r\n" },
      );
      expect(out.stdout).toMatch(/Verify return code: 0 \(ok\)/);
      expect(out.stdout).toMatch(/HTTP\/1.0 200 ok/);
      await exited;
      const log = Buffer.concat(serverOut).toString();
      expect(log).not.toMatch(/verify error/);
      expect(log).toMatch(/depth=0[^\n]*\n?verify return:1/);
    } finally {
      s.kill();
    }
  });

  it("the server refuses a client whose certificate has only serverAuth", async () => {
    const server = await enrol(["DNS:strict.payments.svc.example"], { profile: "mtls" });
    // the provisioner may not issue 'server'; the admin may
    const adminIssued = await enrol(["DNS:server-only.example"], { profile: "server", with: t.ca.adminToken });
    const dir = scratchDir();
    const root = writeTemp("root.pem", t.rootPem, dir);
    const port = await freePort();
    const s = spawn(
      "openssl",
      [
        "s_server",
        "-accept",
        String(port),
        "-naccept",
        "1",
        "-cert",
        writeTemp("server.pem", server.cert, dir),
        "-cert_chain",
        writeTemp("chain.pem", server.chain.slice(0, -1).join(""), dir),
        "-key",
        server.keyPath,
        "-CAfile",
        root,
        "-Verify",
        "2",
        "-verify_return_error",
        "-www",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    try {
      await waitForAccept(s);
      const out = await runAsync(
        "timeout",
        [
          "20",
          "openssl",
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-CAfile",
          root,
          "-cert",
          writeTemp("client.pem", adminIssued.cert, dir),
          "-cert_chain",
          writeTemp("client-chain.pem", adminIssued.chain.slice(0, -1).join(""), dir),
          "-key",
          adminIssued.keyPath,
          "-ign_eof",
        ],
        { input: "GET / HTTP/1.0\r\n\r\n" },
      );
      expect(out.stdout).not.toMatch(/HTTP\/1.0 200 ok/);
      expect(out.stdout + out.stderr).toMatch(/unsupported certificate|alert/i);
    } finally {
      s.kill();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** openssl s_server prints ACCEPT once it listens (probing the port would use up -naccept 1). */
function waitForAccept(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    server.stdout!.on("data", (c: Buffer) => {
      seen += c.toString();
      if (seen.includes("ACCEPT")) resolve();
    });
    server.once("exit", (code) => reject(new Error(`openssl s_server exited (${code}) before listening: ${seen}`)));
  });
}
