// The walking skeleton, end to end: pki init on a real SoftHSM token and PostgreSQL,
// a CSR from `openssl req` issued through the CLI, checked by OpenSSL, Python and pkcs11-tool.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testEnv, type TestEnv } from "../support/harness.ts";
import { opensslCsr, opensslVerify, pki, pythonInspect, run } from "../support/tools.ts";
import { openInventory } from "@pki/authority";

let env: TestEnv;
beforeAll(async () => {
  env = await testEnv({ database: "postgres" });
});
afterAll(async () => {
  await env?.cleanup();
});

describe("pki init", () => {
  it("creates tokens, root and intermediate, and is idempotent", () => {
    const first = pki(["init"], env.env);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/token 'pki-root' created/);
    expect(first.stdout).toMatch(/root default-root-\d{8}-[0-9a-f]{8} created/);
    expect(first.stdout).toMatch(/intermediate default-int-\d{8}-[0-9a-f]{8} created/);

    const second = pki(["init"], env.env);
    expect(second.status).toBe(0);
    expect(second.stdout).not.toMatch(/created/);
    expect(second.stdout).toMatch(/root .* exists/);
    expect(second.stdout).toMatch(/intermediate .* exists/);
  });

  it("keeps the CA keys on the token, sensitive and never extractable", () => {
    const conf = path.join(env.dataDir, "softhsm2.conf");
    for (const token of ["pki-root", "pki-issuing"]) {
      const pin = readFileSync(path.join(env.dataDir, `${token}.pin`), "utf8").trim();
      const listed = run("pkcs11-tool", ["--module", env.config().hsm.modulePath!, "--token-label", token, "--login", "--pin", pin, "--list-objects", "--type", "privkey"], {
        env: { SOFTHSM2_CONF: conf },
      });
      expect(listed.status).toBe(0);
      const privateKeys = listed.stdout.split(/(?=Private Key Object)/).filter((b) => b.startsWith("Private Key Object"));
      expect(privateKeys).toHaveLength(1);
      expect(privateKeys[0]).toMatch(/Access:\s+sensitive, always sensitive, never extractable, local/);
    }
  });

  it("writes the root, chain and admin token files with the right modes", async () => {
    const { statSync } = await import("node:fs");
    expect(statSync(path.join(env.dataDir, "admin.token")).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(env.dataDir, "pki-issuing.pin")).mode & 0o777).toBe(0o600);
    expect(statSync(env.dataDir).mode & 0o777).toBe(0o700);
    const root = readFileSync(path.join(env.dataDir, "root.pem"), "utf8");
    const chain = readFileSync(path.join(env.dataDir, "chain.pem"), "utf8");
    // The intermediate (first block of chain.pem) verifies against the root.
    const intermediate = chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 26);
    expect(run("openssl", ["verify", "-CAfile", path.join(env.dataDir, "root.pem"), "-x509_strict"], { input: intermediate }).stdout).toMatch(/OK/);
    const text = run("openssl", ["x509", "-noout", "-text"], { input: intermediate }).stdout;
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(root).toMatch(/BEGIN CERTIFICATE/);
    // Python's cryptography reads both CA certificates too.
    const rootSeen = pythonInspect(root);
    expect(rootSeen).toMatchObject({ version: "v3", subject: expect.stringMatching(/^CN=PKI Root CA \d{8}-[0-9a-f]{8}$/) });
    expect(rootSeen.issuer).toBe(rootSeen.subject);
    const seen = pythonInspect(intermediate);
    expect(seen.issuer).toBe(rootSeen.subject);
    expect((seen.extensions as Record<string, { critical: boolean; value: string }>).basicConstraints).toMatchObject({ critical: true, value: expect.stringMatching(/ca=True, path_length=0/) });
  });
});

describe("pki issue", () => {
  it("signs an openssl CSR that openssl verify, Python cryptography and the inventory all accept", async () => {
    const csr = opensslCsr({ subject: "/CN=api.payments.example", sans: ["DNS:api.payments.example", "IP:10.0.0.5", "URI:spiffe://prod.example/ns/payments/sa/api", "email:ops@example.com"] });
    const issued = pki(["issue", "--csr", csr.csrPath, "--profile", "mtls", "--ttl", "3600"], env.env);
    expect(issued.stderr).toMatch(/^issued [0-9a-f]{34} by default-int-/);
    expect(issued.status).toBe(0);
    const certPem = issued.stdout;
    const root = readFileSync(path.join(env.dataDir, "root.pem"), "utf8");
    const chain = readFileSync(path.join(env.dataDir, "chain.pem"), "utf8");
    const verified = opensslVerify(certPem, root, chain, ["-x509_strict", "-purpose", "sslclient"]);
    expect(verified.stdout.trim()).toMatch(/: OK$/);
    expect(opensslVerify(certPem, root, chain, ["-purpose", "sslserver"]).status).toBe(0);

    const seen = pythonInspect(certPem);
    expect(seen.version).toBe("v3");
    expect(seen.subject).toBe("CN=api.payments.example");
    expect(seen.sans).toEqual(["api.payments.example", "10.0.0.5", "spiffe://prod.example/ns/payments/sa/api", "ops@example.com"]);
    const extensions = seen.extensions as Record<string, { critical: boolean; value: string }>;
    expect(extensions.basicConstraints!.critical).toBe(true);
    expect(extensions.extendedKeyUsage!.value).toMatch(/serverAuth.*clientAuth/);
    expect(extensions.cRLDistributionPoints!.value).toMatch(/http:\/\/127\.0\.0\.1:8080\/crl\/default-int-.*\.crl/);
    expect(extensions.authorityInfoAccess!.value).toMatch(/OCSP.*http:\/\/127\.0\.0\.1:8080\/ocsp/);
    expect(extensions.authorityInfoAccess!.value).toMatch(/caIssuers.*\/ca\/default-int-.*\.crt/);
    const lifetime = (Date.parse(seen.not_after as string) - Date.parse(seen.not_before as string)) / 1000;
    expect(lifetime).toBe(3600 + 60); // requested TTL plus the documented 60 s backdate

    const serial = seen.serial as string;
    const inventory = await openInventory(env.config());
    try {
      const row = await inventory.certificates.get(serial.padStart(34, "0"));
      expect(row?.status).toBe("valid");
      expect(row?.der?.toString("base64")).toBe(certPem.replace(/-----[A-Z ]+-----|\s/g, ""));
      expect(row?.tbsDer.length).toBeGreaterThan(100);
      expect(row?.sans).toContain("URI:spiffe://prod.example/ns/payments/sa/api");
      const audit = await inventory.audit.recent(5, row!.serial);
      expect(audit.map((a) => a.action)).toContain("certificate.issue");
    } finally {
      await inventory.close();
    }

    const listed = pki(["certs", "list", "-q", "payments"], env.env);
    expect(listed.stdout).toContain(serial.padStart(34, "0"));
  });

  it("issues server and client profiles with their own EKUs, RSA keys too", () => {
    for (const [profile, eku, key] of [
      ["server", "TLS Web Server Authentication", "rsa2048"],
      ["client", "TLS Web Client Authentication", "ec384"],
    ] as const) {
      const csr = opensslCsr({ subject: `/CN=${profile}.example.com`, key });
      const issued = pki(["issue", "--csr", csr.csrPath, "--profile", profile], env.env);
      expect(issued.status).toBe(0);
      const text = run("openssl", ["x509", "-noout", "-text"], { input: issued.stdout }).stdout;
      expect(text).toContain(eku);
      expect(text).not.toContain(profile === "server" ? "Client Authentication" : "Server Authentication");
      expect(text).toContain(`DNS:${profile}.example.com`); // CN copied into the SAN
    }
  });
});
