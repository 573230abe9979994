// The pre-signing encoder against signOcspResponse (asn1-schema), byte for byte. The
// responder key is RSA: PKCS#1 v1.5 signatures are deterministic, so two encodings of the
// same response are equal only if every byte is. The token's part is covered end to end in
// test/e2e/revocation-*.test.ts.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Signer } from "../signer.ts";
import { caCertificateFacts, type CaCertificateFacts } from "../certificate-facts.ts";
import { PresignedResponseEncoder, certIdFor, signOcspResponse, type PresignStatus, type ResponderIdentity } from "./response.ts";

let responder: ResponderIdentity;
let issuer: CaCertificateFacts;
beforeAll(() => {
  const dir = mkdtempSync(path.join(tmpdir(), "ocsp-unit-"));
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPath = path.join(dir, "responder.key");
  writeFileSync(keyPath, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
  const certPath = path.join(dir, "responder.pem");
  execFileSync("openssl", ["req", "-x509", "-key", keyPath, "-subj", "/CN=Unit OCSP Responder", "-days", "2", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", certPath]);
  const certificateDer = Buffer.from(readFileSync(certPath, "utf8").replace(/-----[^-]+-----|\s/g, ""), "base64");
  // the responder's own certificate stands in for the issuer's: only its name and key are hashed
  issuer = caCertificateFacts(certificateDer);
  const signer: Signer = {
    algorithm: "RSA-2048",
    publicKeySpki: issuer.spki,
    sign: async (data) => sign("sha256", data, keys.privateKey),
    signDigest: async () => {
      throw new Error("not used");
    },
  };
  responder = { certificateDer, signer };
});

const thisUpdate = new Date("2026-12-05T06:00:00.750Z");
const nextUpdate = new Date("2026-12-12T06:00:00.000Z");
const producedAt = new Date("2026-12-05T06:00:01.250Z");

async function both(hash: "sha1" | "sha256", s: PresignStatus) {
  const fast = await new PresignedResponseEncoder(responder, issuer).sign(hash, s, producedAt);
  const reference = await signOcspResponse(responder, [{ ...s, certIdDer: certIdFor(hash, issuer, s.serialHex) }], { producedAt });
  return { fast, reference };
}

describe("PresignedResponseEncoder", () => {
  const serial = "4a0f3c9e2b7d8165a3c4e5f60718293a4b";
  it.each([
    ["good, SHA-1 CertID", "sha1", { serialHex: serial, status: "good", thisUpdate, nextUpdate }],
    ["good, SHA-256 CertID", "sha256", { serialHex: serial, status: "good", thisUpdate, nextUpdate }],
    ["good, a serial whose first bit is set", "sha1", { serialHex: "80ff01", status: "good", thisUpdate, nextUpdate }],
    ["revoked, keyCompromise", "sha256", { serialHex: serial, status: "revoked", revokedAt: new Date("2026-12-01T10:11:12.900Z"), reason: 1, thisUpdate, nextUpdate }],
    ["revoked, unspecified (no reason encoded)", "sha1", { serialHex: serial, status: "revoked", revokedAt: new Date("2026-12-01T10:11:12Z"), reason: 0, thisUpdate, nextUpdate }],
    ["revoked without a revocation date", "sha1", { serialHex: serial, status: "revoked", thisUpdate, nextUpdate }],
    ["a nextUpdate past 2049 (still GeneralizedTime)", "sha256", { serialHex: serial, status: "good", thisUpdate, nextUpdate: new Date("2051-01-01T00:00:00Z") }],
  ] as const)("encodes %s exactly as signOcspResponse does", async (_name, hash, status) => {
    const { fast, reference } = await both(hash, status);
    expect(fast.toString("hex")).toBe(reference.toString("hex"));
  });

  it("names the serial it is given", async () => {
    const a = await new PresignedResponseEncoder(responder, issuer).sign("sha1", { serialHex: "01", status: "good", thisUpdate, nextUpdate }, producedAt);
    const b = await new PresignedResponseEncoder(responder, issuer).sign("sha1", { serialHex: "02", status: "good", thisUpdate, nextUpdate }, producedAt);
    expect(a.includes(certIdFor("sha1", issuer, "01"))).toBe(true);
    expect(b.includes(certIdFor("sha1", issuer, "02"))).toBe(true);
    expect(a.includes(certIdFor("sha1", issuer, "02"))).toBe(false);
  });
});
