import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { certificateView } from "./certificate-view.ts";

/** A self-signed certificate from openssl with the extensions a leaf of this CA has, and one it does not know. */
function opensslCertificate(): { der: Buffer; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "cert-view-"));
  const file = path.join(dir, "cert.pem");
  writeFileSync(
    path.join(dir, "ext.cnf"),
    [
      "[req]",
      "distinguished_name = dn",
      "[dn]",
      "[v3]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = serverAuth, clientAuth",
      "subjectAltName = DNS:api.example, IP:10.0.0.1",
      "subjectKeyIdentifier = hash",
      "authorityInfoAccess = OCSP;URI:http://ocsp.example/",
      "crlDistributionPoints = URI:http://crl.example/ca.crl",
      "freshestCRL = URI:http://crl.example/delta.crl",
      "1.2.3.4.5 = ASN1:UTF8String:custom",
    ].join("\n"),
  );
  const key = path.join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      file,
      "-subj",
      "/CN=api.example",
      "-days",
      "1",
      "-config",
      path.join(dir, "ext.cnf"),
      "-extensions",
      "v3",
    ],
    { stdio: "pipe" },
  );
  return { der: execFileSync("openssl", ["x509", "-in", file, "-outform", "DER"]), file };
}

describe("certificateView", () => {
  const cert = opensslCertificate();
  const view = certificateView(cert.der);

  it("gives the fingerprints openssl gives", () => {
    const openssl = (hash: string) =>
      execFileSync("openssl", ["x509", "-noout", "-fingerprint", `-${hash}`, "-in", cert.file])
        .toString()
        .trim()
        .split("=")[1];
    expect(view.fingerprints.sha256).toBe(openssl("sha256"));
    expect(view.fingerprints.sha1).toBe(openssl("sha1"));
    expect(readFileSync(cert.file, "utf8")).toContain("BEGIN CERTIFICATE");
  });

  it("names the key usages and purposes", () => {
    expect(view.keyUsage).toEqual(["digitalSignature", "keyEncipherment"]);
    expect(view.extendedKeyUsage).toEqual(["serverAuth", "clientAuth"]);
  });

  it("lists every extension with its criticality, decoded where known and as hex where not", () => {
    const byName = Object.fromEntries(view.extensions.map((e) => [e.name, e]));
    expect(byName.basicConstraints).toMatchObject({ critical: true, values: ["CA:FALSE"] });
    expect(byName.keyUsage).toMatchObject({ critical: true });
    expect(byName.subjectAltName).toMatchObject({ critical: false, values: ["DNS:api.example", "IP:10.0.0.1"] });
    expect(byName.authorityInfoAccess?.values).toEqual(["OCSP - URI:http://ocsp.example/"]);
    expect(byName.cRLDistributionPoints?.values).toEqual(["URI:http://crl.example/ca.crl"]);
    expect(byName.freshestCRL?.values).toEqual(["URI:http://crl.example/delta.crl"]);
    expect(byName.subjectKeyIdentifier?.values[0]).toMatch(/^[0-9a-f]{40}$/);
    expect(byName["1.2.3.4.5"]).toMatchObject({ oid: "1.2.3.4.5", critical: false, values: [Buffer.concat([Buffer.from([0x0c, 6]), Buffer.from("custom")]).toString("hex")] });
  });
});
