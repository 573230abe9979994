// Bad input to the foundation: each refusal is one clear line naming the problem, and
// nothing reaches the inventory or the token.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testEnv, type TestEnv } from "../support/harness.ts";
import { opensslCsr, pki, scratchDir, writeTemp } from "../support/tools.ts";
import { openInventory } from "@pki/authority";

let env: TestEnv;
let certificateRows: () => Promise<number>;

beforeAll(async () => {
  env = await testEnv({ database: "postgres" });
  expect(pki(["init"], env.env).status).toBe(0);
  certificateRows = async () => {
    const inventory = await openInventory(env.config());
    try {
      const rows = await inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates");
      return Number(rows[0]!.n);
    } finally {
      await inventory.close();
    }
  };
});
afterAll(async () => {
  await env?.cleanup();
});

function expectRefusal(args: string[], message: RegExp, extraEnv: Record<string, string> = {}) {
  const result = pki(args, { ...env.env, ...extraEnv });
  expect(result.status).toBe(1);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^pki: /);
  expect(lines[0]).toMatch(message);
}

describe("pki issue refuses bad input and stores nothing", () => {
  it("garbage, tampered, weak and misused CSRs", async () => {
    const dir = scratchDir();
    const good = opensslCsr({ subject: "/CN=ok.example.com", dir });

    expectRefusal(["issue", "--csr", writeTemp("garbage.csr", "hello, I am not a CSR", dir)], /the CSR is not PEM .* or DER|not a valid PKCS#10/);
    expectRefusal(["issue", "--csr", writeTemp("random.der", Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)), dir)], /not a valid PKCS#10|not DER-encoded/);
    expectRefusal(["issue", "--csr", path.join(dir, "missing.csr")], /cannot read CSR file/);

    // Flip one byte of the subject inside the signed part: the signature no longer verifies.
    const pemBody = good.csrPem.replace(/-----[A-Z ]+-----|\s/g, "");
    const bytes = Buffer.from(pemBody, "base64");
    const at = bytes.indexOf(Buffer.from("ok.example.com"));
    bytes[at] = "x".charCodeAt(0);
    expectRefusal(["issue", "--csr", writeTemp("tampered.der", bytes, dir)], /CSR signature does not verify/);

    const weak = opensslCsr({ subject: "/CN=weak.example.com", key: "rsa1024", dir });
    expectRefusal(["issue", "--csr", weak.csrPath], /RSA keys must be at least 2048 bits \(this one has 1024\)/);

    expectRefusal(["issue", "--csr", good.csrPath, "--profile", "codesigning"], /unknown profile 'codesigning'; use one of mtls, server, client/);
    expectRefusal(["issue", "--csr", good.csrPath, "--ttl", "-5"], /--ttl must be a positive whole number/);

    const badName = opensslCsr({ sans: ["DNS:Bad_Name.example.com"], dir });
    expectRefusal(["issue", "--csr", badName.csrPath], /SAN DNS:Bad_Name.example.com must be lower case/);
    const noName = opensslCsr({ dir });
    expectRefusal(["issue", "--csr", noName.csrPath], /the CSR names no subject/);

    expect(await certificateRows()).toBe(0);
  });

  it("a missing token or a wrong PIN is named, and nothing is signed", async () => {
    const csr = opensslCsr({ subject: "/CN=ok.example.com" });
    expectRefusal(["issue", "--csr", csr.csrPath], /no initialised token labelled 'no-such-token'/, { PKI_ISSUING_TOKEN_LABEL: "no-such-token", PKI_ISSUING_PIN: "1234" });
    expectRefusal(["issue", "--csr", csr.csrPath], /token rejected the PIN/, { PKI_ISSUING_PIN: "wrong-pin" });
    expectRefusal(["issue", "--csr", csr.csrPath], /PKCS11_MODULE: no file at \/nonexistent\/lib.so/, { PKCS11_MODULE: "/nonexistent/lib.so" });
    expectRefusal(["issue", "--csr", csr.csrPath], /DATABASE_URL: must be a postgresql:\/\/ URL/, { DATABASE_URL: "mysql://x" });
    expect(await certificateRows()).toBe(0);
    // The PIN never appears in what the CLI prints.
    const wrong = pki(["issue", "--csr", csr.csrPath], { ...env.env, PKI_ISSUING_PIN: "s3cret-pin-value" });
    expect(wrong.stderr + wrong.stdout).not.toContain("s3cret-pin-value");
    const pin = readFileSync(path.join(env.dataDir, "pki-issuing.pin"), "utf8").trim();
    expect(wrong.stderr).not.toContain(pin);
  });
});
