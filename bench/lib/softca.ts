// A software P-256 CA for the peers (cfssl, openssl), made with openssl, and OCSP
// requests/responses for serials under it. Responses are real (signed by the CA key with
// Node's crypto, DER via packages/ca-core's encoder) so the peers serve real bytes.
import { createPrivateKey, createPublicKey, randomBytes, sign as nodeSign } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { caCertificateFacts, certIdFor, pemBlocks, signOcspResponse } from "@pki/ca-core";
import { run } from "./proc.ts";
import { ocspRequest } from "./der.ts";

export interface SoftCa {
  dir: string;
  certPem: string;
  certPath: string;
  keyPath: string;
  der: Buffer;
  facts: { subjectDer: Buffer; spki: Buffer };
  /** signs one OCSP response for `serialHex` (good, or revoked at `revokedAt`) */
  ocspResponse(serialHex: string, revokedAt?: Date): Promise<Buffer>;
  /** the OCSP request DER for `serialHex` (SHA-1 CertID, as OpenSSL sends) */
  ocspRequest(serialHex: string, hash?: "sha1" | "sha256"): Buffer;
}

export function createSoftCa(dir: string): SoftCa {
  const keyPath = path.join(dir, "peer-ca.key");
  const certPath = path.join(dir, "peer-ca.pem");
  run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPath]);
  run("openssl", [
    "req", "-x509", "-new", "-key", keyPath, "-out", certPath, "-days", "365", "-subj", "/O=Bench/CN=Bench Peer CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const certPem = readFileSync(certPath, "utf8");
  const der = pemBlocks(certPem, ["CERTIFICATE"])[0]!;
  const facts = caCertificateFacts(der);
  const key = createPrivateKey(readFileSync(keyPath));
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  const signer = { keyUri: "file:peer-ca.key", algorithm: "ECDSA-P256" as const, publicKeySpki: spki, sign: async (data: Buffer) => nodeSign("sha256", data, key) };
  const identity = { certificateDer: der, signer };
  return {
    dir,
    certPem,
    certPath,
    keyPath,
    der,
    facts,
    ocspResponse: (serialHex, revokedAt) => {
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      return signOcspResponse(
        identity,
        [{ certIdDer: certIdFor("sha1", facts, serialHex), status: revokedAt ? "revoked" : "good", revokedAt, reason: revokedAt ? 1 : undefined, thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000) }],
        { producedAt: now },
      );
    },
    ocspRequest: (serialHex, hash = "sha1") => ocspRequest(certIdFor(hash, facts, serialHex)),
  };
}

/** Serials like ours: 17 bytes, first byte 0x01. */
export const randomSerial = () => Buffer.concat([Buffer.from([0x01]), randomBytes(16)]).toString("hex");
