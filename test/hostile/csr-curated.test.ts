// Curated nasty CSRs, made with OpenSSL (and @peculiar/x509 where OpenSSL will not make
// the mistake): each one is refused by CSR intake with a sentence naming the problem.
// The HTTP-level version of this list, with "nothing stored", lives with the API tests.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { CaError, namesOf, parseCsr } from "@pki/x509";
import { opensslCsr, scratchDir } from "../support/tools.ts";
import path from "node:path";
import { writeFileSync } from "node:fs";

x509.cryptoProvider.set(webcrypto as Crypto);

function refusal(make: () => string | Buffer): string {
  try {
    const proposal = parseCsr(make());
    namesOf(proposal);
  } catch (error) {
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).kind).toBe("bad_request");
    return (error as CaError).message;
  }
  throw new Error("the CSR was accepted");
}

async function peculiarCsr(extensions: x509.Extension[], name = "CN=nasty.example.com"): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" }, extensions })).toString("pem");
}

describe("curated nasty CSRs", () => {
  it("weak or unusual keys", () => {
    expect(refusal(() => opensslCsr({ key: "rsa1024" }).csrPem)).toBe("RSA keys must be at least 2048 bits (this one has 1024)");
    expect(refusal(() => opensslCsr({ key: "rsa2048-e3", subject: "/CN=nasty.example.com" }).csrPem)).toBe("RSA public exponent must be 65537 (this one is 3)");
    expect(refusal(() => opensslCsr({ key: "ed25519", subject: "/CN=nasty.example.com" }).csrPem)).toMatch(/ed25519 keys are not allowed/);
    expect(refusal(() => opensslCsr({ key: "ed448", subject: "/CN=nasty.example.com" }).csrPem)).toMatch(/ed448 keys are not allowed/);
    expect(refusal(() => opensslCsr({ key: "secp256k1", subject: "/CN=nasty.example.com" }).csrPem)).toMatch(/EC curve secp256k1 is not allowed/);
    expect(refusal(() => opensslCsr({ key: "ec256-explicit", subject: "/CN=nasty.example.com" }).csrPem)).toBe("EC keys with explicit parameters are not allowed; use a named curve (P-256 or P-384)");
  });

  it("CSRs asking for CA powers", () => {
    expect(refusal(() => opensslCsr({ subject: "/CN=evil.example.com", extensions: ["basicConstraints=critical,CA:TRUE"] }).csrPem)).toBe(
      "the CSR asks for CA:TRUE; this CA issues only leaf certificates",
    );
    expect(refusal(() => opensslCsr({ subject: "/CN=evil.example.com", extensions: ["keyUsage=keyCertSign"] }).csrPem)).toBe(
      "the CSR asks for keyCertSign or cRLSign; this CA issues only leaf certificates",
    );
  });

  it("hostile names", async () => {
    expect(refusal(() => opensslCsr({ sans: ["DNS:*.*"] }).csrPem)).toBe("SAN DNS:*.* is a wildcard over a whole top-level domain");
    expect(refusal(() => opensslCsr({ sans: ["DNS:*.*.example.com"] }).csrPem)).toBe("SAN DNS:*.*.example.com has an invalid label '*' (letters, digits and hyphens only; IDNs in punycode)");
    expect(refusal(() => opensslCsr({ sans: ["DNS:*.com"] }).csrPem)).toBe("SAN DNS:*.com is a wildcard over a whole top-level domain");
    expect(refusal(() => opensslCsr({ sans: ["DNS:xn--pple-43d.com"] }).csrPem)).toBe("SAN DNS:xn--pple-43d.com mixes Latin with Cyrillic or Greek letters in one label (a homograph)");
    expect(refusal(() => opensslCsr({ sans: ["DNS:api.example.com.", "DNS:ok.example.com"] }).csrPem)).toMatch(/invalid label ''/);
    const nul = await peculiarCsr([new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "good.example.com\u0000.evil.example" }])]);
    expect(refusal(() => nul)).toBe("SAN DNS contains control characters");
    const twoCns = opensslCsr({ subject: "/CN=a.example.com/CN=b.example.com" }).csrPem;
    expect(refusal(() => twoCns)).toBe("the CSR subject has more than one CN");
  });

  it("oversized requests", async () => {
    const manySans = await peculiarCsr([new x509.SubjectAlternativeNameExtension(Array.from({ length: 10_000 }, (_, i) => ({ type: "dns" as const, value: `h${i}.example.com` })))]);
    expect(refusal(() => manySans)).toMatch(/the CSR is \d+ bytes; at most 65536 are accepted/);
    const hundredOne = await peculiarCsr([new x509.SubjectAlternativeNameExtension(Array.from({ length: 101 }, (_, i) => ({ type: "dns" as const, value: `h${i}.example.com` })))], "CN=Service X");
    expect(refusal(() => hundredOne)).toBe("the CSR asks for 101 SANs; at most 100 are allowed");
    // A 1.5 MB subject of 16,000 OU attributes, made by OpenSSL from a config file.
    const dir = scratchDir();
    const config = ["[req]", "distinguished_name=dn", "prompt=no", "[dn]", "CN=big.example.com", ...Array.from({ length: 16_000 }, (_, i) => `${i}.OU=${"A".repeat(60)}`)].join("\n");
    writeFileSync(path.join(dir, "big.cnf"), config);
    const big = opensslCsr({ subjectConfig: path.join(dir, "big.cnf"), dir });
    expect(refusal(() => big.csrPem)).toMatch(/^the CSR is 1\d{6} bytes; at most 65536 are accepted$/);
  });

  it("duplicate extensions", async () => {
    const san = new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "dup.example.com" }]);
    const duplicated = await peculiarCsr([san, san]);
    expect(refusal(() => duplicated)).toBe("the CSR's extension request lists extension 2.5.29.17 twice");
  });
});
