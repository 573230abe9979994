// ACME with the clients people run: certbot and lego against `npm start`'s server on
// loopback. Names resolve to 127.0.0.1 through a test DNS server (PKI_ACME_RESOLVER), which
// also takes lego's dns-01 TXT records and serves CAA; the server validates http-01 and
// tls-alpn-01 on ports the clients listen on. Certificates are
// checked with openssl, looked up in the inventory and, once revoked, asked about on OCSP.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { callApi } from "../support/api.ts";
import { runAsync } from "../support/revocation.ts";
import { TestDnsServer } from "../support/dns-server.ts";
import { freePort, pki, which, npmStartArgs } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

const haveClients = which("certbot") && which("lego");

let env: TestEnv;
let dns: TestDnsServer;
let server: ChildProcess | undefined;
let output = "";
let apiUrl = "";
let publicUrl = "";
let rootPath = "";
let rootPem = "";
let adminToken = "";
let http01Port = 0;
let tlsAlpnPort = 0;
let work = "";

const directory = (provisioner: string) => `${apiUrl}/acme/${provisioner}/directory`;
const admin = (method: string, urlPath: string, body?: unknown) => callApi(apiUrl, rootPem, method, urlPath, { token: adminToken, ...(body === undefined ? {} : { body }) });

beforeAll(async () => {
  if (!haveClients) return;
  env = await testEnv();
  dns = await TestDnsServer.start();
  for (const name of ["www", "api", "lego", "alpn", "shop.partners", "x.partners", "caa-refused"]) dns.add(`${name}.acme.test`, { type: "A", data: "127.0.0.1" });
  // CAA names another CA for this one name: issuance for it must be refused
  dns.add("caa-refused.acme.test", { type: "CAA", data: { tag: "issue", value: "other-ca.example" } });
  dns.add("acme.test", { type: "CAA", data: { tag: "issue", value: "pki.acme.test" } });
  const httpPort = await freePort();
  const apiPort = await freePort();
  http01Port = await freePort();
  tlsAlpnPort = await freePort();
  publicUrl = `http://127.0.0.1:${httpPort}`;
  apiUrl = `https://127.0.0.1:${apiPort}`;
  const serverEnv = {
    ...env.env,
    PKI_HTTP_PORT: String(httpPort),
    PKI_API_PORT: String(apiPort),
    PKI_PUBLIC_URL: publicUrl,
    PKI_SCHEDULER_ENABLED: "false",
    PKI_ACME_RESOLVER: dns.address,
    PKI_ACME_HTTP01_PORT: String(http01Port),
    PKI_ACME_TLSALPN01_PORT: String(tlsAlpnPort),
    PKI_ACME_CAA_IDENTITIES: "pki.acme.test",
  };
  server = spawn(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env: childEnv(serverEnv), stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d) => (output += d));
  server.stderr!.on("data", (d) => (output += d));
  const deadline = Date.now() + 90_000;
  while (!output.includes("issuing API:")) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  rootPath = path.join(env.dataDir, "root.pem");
  rootPem = readFileSync(rootPath, "utf8");
  adminToken = readFileSync(path.join(env.dataDir, "admin.token"), "utf8").trim();
  work = mkdtempSync(path.join(tmpdir(), "pki-acme-clients-"));
  // one ACME provisioner through the API, one (with EAB) through the CLI
  const created = await admin("POST", "/v1/provisioners", { name: "web", type: "acme", profiles: ["server", "mtls"], names: ["DNS:.acme.test"], maxTtlSeconds: 86400 });
  expect(created.status, created.text).toBe(201);
  expect(created.json.token).toBeUndefined();
  expect(created.json.acmeDirectory).toBe(directory("web"));
  const cli = pki(["provisioner", "add", "partners", "--type", "acme", "--names", "DNS:.partners.acme.test", "--profiles", "server", "--eab"], serverEnv);
  expect(cli.status, cli.stderr).toBe(0);
  expect(cli.stdout).toContain("/acme/partners/directory");
  expect(pki(["provisioner", "list"], serverEnv).stdout).toMatch(/partners\s+active\s+acme/);
  const listed = await admin("GET", "/v1/provisioners");
  expect(listed.json.find((p: { name: string }) => p.name === "web").type).toBe("acme");
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await once(server, "exit");
  }
  await dns?.close();
  await env?.cleanup();
});

const certbot = (configDir: string, provisioner: string, args: string[]) =>
  runAsync(
    "certbot",
    [
      "--server",
      directory(provisioner),
      "--config-dir",
      path.join(configDir, "config"),
      "--work-dir",
      path.join(configDir, "work"),
      "--logs-dir",
      path.join(configDir, "logs"),
      "--non-interactive",
      "--agree-tos",
      "--register-unsafely-without-email",
      ...args,
    ],
    { env: { REQUESTS_CA_BUNDLE: rootPath } },
  );

const lego = (legoDir: string, provisioner: string, args: string[], env: Record<string, string> = {}) =>
  runAsync("lego", ["--server", directory(provisioner), "--accept-tos", "--email", "ops@acme.test", "--path", legoDir, ...args], { env: { LEGO_CA_CERTIFICATES: rootPath, ...env } });

const serialOf = async (certPath: string) =>
  (await runAsync("openssl", ["x509", "-in", certPath, "-noout", "-serial"])).stdout
    .trim()
    .replace(/^serial=/, "")
    .toLowerCase();

async function expectVerifies(certPath: string, chainPath: string): Promise<void> {
  const verified = await runAsync("openssl", ["verify", "-CAfile", rootPath, "-untrusted", chainPath, certPath]);
  expect(verified.stdout + verified.stderr).toMatch(/: OK/);
}

async function expectInInventory(serial: string, provisioner: string): Promise<void> {
  const row = await admin("GET", `/v1/certificates/${serial}`);
  expect(row.status, row.text).toBe(200);
  expect(row.json.requester).toMatch(new RegExp(`^acme:${provisioner}/[0-9a-f-]{36}$`));
}

async function ocspStatus(certPath: string, issuerPath: string): Promise<string> {
  const answer = await runAsync("openssl", ["ocsp", "-issuer", issuerPath, "-cert", certPath, "-url", `${publicUrl}/ocsp`, "-CAfile", rootPath, "-no_nonce"]);
  expect(answer.stdout + answer.stderr).toMatch(/Response verify OK/);
  return answer.stdout;
}

describe.skipIf(!haveClients)("ACME clients", () => {
  it("certbot obtains (http-01), renews and revokes; the certificate verifies, is in the inventory, and OCSP says revoked", async () => {
    const dir = path.join(work, "certbot");
    const obtained = await certbot(dir, "web", ["certonly", "--standalone", "--http-01-port", String(http01Port), "-d", "www.acme.test", "-d", "api.acme.test"]);
    expect(obtained.status, obtained.stdout + obtained.stderr).toBe(0);
    const live = path.join(dir, "config/live/www.acme.test");
    await expectVerifies(path.join(live, "cert.pem"), path.join(live, "chain.pem"));
    const first = await serialOf(path.join(live, "cert.pem"));
    await expectInInventory(first, "web");
    const names = await runAsync("openssl", ["x509", "-in", path.join(live, "cert.pem"), "-noout", "-ext", "subjectAltName"]);
    expect(names.stdout).toContain("DNS:www.acme.test");
    expect(names.stdout).toContain("DNS:api.acme.test");

    // `certbot renew` without a terminal sleeps up to 8 minutes first (certbot 2.1 has no
    // switch for it); certonly --force-renewal renews the same lineage at once.
    const renewed = await certbot(dir, "web", [
      "certonly",
      "--standalone",
      "--http-01-port",
      String(http01Port),
      "--force-renewal",
      "--cert-name",
      "www.acme.test",
      "-d",
      "www.acme.test",
      "-d",
      "api.acme.test",
    ]);
    expect(renewed.status, renewed.stdout + renewed.stderr).toBe(0);
    const second = await serialOf(path.join(live, "cert.pem"));
    expect(second).not.toBe(first);
    await expectVerifies(path.join(live, "cert.pem"), path.join(live, "chain.pem"));
    await expectInInventory(second, "web");

    expect(await ocspStatus(path.join(live, "cert.pem"), path.join(live, "chain.pem"))).toMatch(/: good/);
    const revoked = await certbot(dir, "web", ["revoke", "--cert-name", "www.acme.test", "--reason", "keycompromise", "--no-delete-after-revoke"]);
    expect(revoked.status, revoked.stdout + revoked.stderr).toBe(0);
    expect(await ocspStatus(path.join(live, "cert.pem"), path.join(live, "chain.pem"))).toMatch(/: revoked/);
    const row = await admin("GET", `/v1/certificates/${second}`);
    expect(row.json.status).toBe("revoked");
  }, 180_000);

  it("lego obtains with http-01 and tls-alpn-01, renews and revokes", async () => {
    const dir = path.join(work, "lego");
    const obtained = await lego(dir, "web", ["--domains", "lego.acme.test", "--http", "--http.port", `:${http01Port}`, "run"]);
    expect(obtained.status, obtained.stdout + obtained.stderr).toBe(0);
    const cert = path.join(dir, "certificates/lego.acme.test.crt");
    const issuer = path.join(dir, "certificates/lego.acme.test.issuer.crt");
    await expectVerifies(cert, issuer);
    const first = await serialOf(cert);
    await expectInInventory(first, "web");

    const renewed = await lego(dir, "web", ["--domains", "lego.acme.test", "--http", "--http.port", `:${http01Port}`, "renew", "--days", "3650", "--no-random-sleep"]);
    expect(renewed.status, renewed.stdout + renewed.stderr).toBe(0);
    const second = await serialOf(cert);
    expect(second).not.toBe(first);
    await expectInInventory(second, "web");

    const alpn = await lego(dir, "web", ["--domains", "alpn.acme.test", "--tls", "--tls.port", `:${tlsAlpnPort}`, "run"]);
    expect(alpn.status, alpn.stdout + alpn.stderr).toBe(0);
    await expectVerifies(path.join(dir, "certificates/alpn.acme.test.crt"), path.join(dir, "certificates/alpn.acme.test.issuer.crt"));

    const revoked = await lego(dir, "web", ["--domains", "lego.acme.test", "revoke", "--keep"]);
    expect(revoked.status, revoked.stdout + revoked.stderr).toBe(0);
    expect(await ocspStatus(cert, issuer)).toMatch(/: revoked/);
  }, 180_000);

  it("lego obtains a wildcard through dns-01 (its exec provider writes the TXT record to the test DNS server)", async () => {
    const dir = path.join(work, "lego-dns");
    const script = dns.writeLegoExecScript(work);
    const args = ["--domains", "*.wild.acme.test", "--domains", "wild.acme.test", "--dns", "exec", "--dns.resolvers", dns.address, "--dns.disable-cp", "run"];
    const obtained = await lego(dir, "web", args, { EXEC_PATH: script, EXEC_SEQUENCE_INTERVAL: "1", EXEC_POLLING_INTERVAL: "1" });
    expect(obtained.status, obtained.stdout + obtained.stderr).toBe(0);
    const cert = path.join(dir, "certificates/_.wild.acme.test.crt");
    await expectVerifies(cert, path.join(dir, "certificates/_.wild.acme.test.issuer.crt"));
    const names = await runAsync("openssl", ["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]);
    expect(names.stdout).toContain("DNS:*.wild.acme.test");
    await expectInInventory(await serialOf(cert), "web");
  }, 120_000);

  it("a name whose CAA records name another CA is refused with a caa problem", async () => {
    const refused = await lego(path.join(work, "lego-caa"), "web", ["--domains", "caa-refused.acme.test", "--http", "--http.port", `:${http01Port}`, "run"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain("urn:ietf:params:acme:error:caa");
  }, 60_000);

  it("a name outside the provisioner's patterns is rejectedIdentifier, and nothing is issued", async () => {
    const before = await admin("GET", "/v1/certificates?q=outside.example.com");
    const refused = await lego(path.join(work, "lego-outside"), "web", ["--domains", "outside.example.com", "--http", "--http.port", `:${http01Port}`, "run"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain("urn:ietf:params:acme:error:rejectedIdentifier");
    expect(refused.stdout + refused.stderr).toContain("DNS:outside.example.com is not allowed for provisioner 'web'");
    const after = await admin("GET", "/v1/certificates?q=outside.example.com");
    expect(after.text).toBe(before.text);
  }, 60_000);

  it("an EAB provisioner refuses accounts without a key and takes one made by `pki provisioner eab`, once", async () => {
    const refused = await certbot(path.join(work, "certbot-no-eab"), "partners", ["register"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/externalAccountRequired|requires external account binding/);

    const eab = pki(["provisioner", "eab", "partners"], env.env);
    expect(eab.status, eab.stderr).toBe(0);
    const kid = /kid: (\S+)/.exec(eab.stdout)?.[1] ?? "";
    const hmac = /hmac key: (\S+)/.exec(eab.stdout)?.[1] ?? "";
    expect(kid).toMatch(/^kid_/);
    expect(Buffer.from(hmac, "base64url")).toHaveLength(32);

    const dir = path.join(work, "lego-eab");
    const obtained = await lego(dir, "partners", ["--eab", "--kid", kid, "--hmac", hmac, "--domains", "shop.partners.acme.test", "--http", "--http.port", `:${http01Port}`, "run"]);
    expect(obtained.status, obtained.stdout + obtained.stderr).toBe(0);
    await expectInInventory(await serialOf(path.join(dir, "certificates/shop.partners.acme.test.crt")), "partners");

    // the key is bound to that account: a second account cannot use it
    const reused = await lego(path.join(work, "lego-eab-again"), "partners", [
      "--eab",
      "--kid",
      kid,
      "--hmac",
      hmac,
      "--domains",
      "x.partners.acme.test",
      "--http",
      "--http.port",
      `:${http01Port}`,
      "run",
    ]);
    expect(reused.status).not.toBe(0);
    expect(reused.stdout + reused.stderr).toContain("already bound");
  }, 120_000);

  it("an EAB key made through the API (the console's New EAB key…) registers an account; the list shows type, directory and EAB", async () => {
    const made = await admin("POST", "/v1/provisioners/partners/eab-keys");
    expect(made.status, made.text).toBe(201);
    expect(made.headers["cache-control"]).toBe("no-store");
    expect(made.json).toMatchObject({ provisioner: "partners", kid: expect.stringMatching(/^kid_/), acmeDirectory: directory("partners") });
    expect(Buffer.from(made.json.hmacKey, "base64url")).toHaveLength(32);
    const listed = (await admin("GET", "/v1/provisioners")).json as Array<Record<string, unknown>>;
    expect(listed.find((p) => p.name === "partners")).toMatchObject({ type: "acme", acmeDirectory: directory("partners"), eabRequired: true, unusedEabKeys: 1 });
    expect(listed.find((p) => p.name === "web")).toMatchObject({ type: "acme", acmeDirectory: directory("web"), eabRequired: false });

    const registered = await certbot(path.join(work, "certbot-api-eab"), "partners", ["register", `--eab-kid=${made.json.kid}`, `--eab-hmac-key=${made.json.hmacKey}`]);
    expect(registered.status, registered.stdout + registered.stderr).toBe(0);
    expect(((await admin("GET", "/v1/provisioners")).json as Array<Record<string, unknown>>).find((p) => p.name === "partners")!.unusedEabKeys).toBe(0);

    // Only ACME provisioners have EAB keys; an unknown one is a 404; the audit names the operator.
    const notAcme = await admin("POST", "/v1/provisioners", { name: "plain-token", profiles: ["server"], names: ["DNS:.plain.acme.test"], maxTtlSeconds: 86400 });
    expect(notAcme.status, notAcme.text).toBe(201);
    const refused = await admin("POST", "/v1/provisioners/plain-token/eab-keys");
    expect(refused.status).toBe(400);
    expect(refused.json.detail).toMatch(/not an ACME provisioner/);
    expect((await admin("POST", "/v1/provisioners/nobody/eab-keys")).status).toBe(404);
    const audit = await admin("GET", `/v1/audit?action=acme.eab.create&target=eab:${made.json.kid}`);
    expect(audit.json.items).toHaveLength(1);
  }, 120_000);
});
