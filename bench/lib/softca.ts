// A software P-256 CA for the peers (cfssl, openssl), made with openssl, and OCSP
// requests/responses for serials under it. Responses are real (signed by the CA key with
// Node's crypto, DER via packages/x509's encoder) so the peers serve real bytes.
import { createPrivateKey, createPublicKey, randomBytes, sign as nodeSign } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { caCertificateFacts, certIdFor, pemBlocks, signOcspResponse } from "@pki/x509";
import { run } from "./proc.ts";
import { ocspRequest, tlvAt } from "./der.ts";

export interface SoftCa {
  dir: string;
  certPem: string;
  certPath: string;
  keyPath: string;
  der: Buffer;
  facts: { subjectDer: Buffer; spki: Buffer };
  /** signs one OCSP response for `serialHex` (good, or revoked at `revokedAt`) */
  ocspResponse(serialHex: string, revokedAt?: Date): Promise<Buffer>;
  /**
   * Many good responses fast: one built by packages/x509's encoder as a template, then
   * for each serial the template's to-be-signed part with the serial replaced (same length),
   * signed again (ECDSA, re-drawn until its DER has the template's length, so every length
   * field stays valid). Real, verifiable responses at ~30k/s instead of ~500/s.
   */
  ocspResponses(serialsHex: string[]): Promise<Buffer[]>;
  /** the OCSP request DER for `serialHex` (SHA-1 CertID, as OpenSSL sends) */
  ocspRequest(serialHex: string, hash?: "sha1" | "sha256"): Buffer;
}

export function createSoftCa(dir: string): SoftCa {
  const keyPath = path.join(dir, "peer-ca.key");
  const certPath = path.join(dir, "peer-ca.pem");
  run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPath]);
  run("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    keyPath,
    "-out",
    certPath,
    "-days",
    "365",
    "-subj",
    "/O=Bench/CN=Bench Peer CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const certPem = readFileSync(certPath, "utf8");
  const der = pemBlocks(certPem, ["CERTIFICATE"])[0]!;
  const facts = caCertificateFacts(der);
  const key = createPrivateKey(readFileSync(keyPath));
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  const signer = {
    keyUri: "file:peer-ca.key",
    algorithm: "ECDSA-P256" as const,
    publicKeySpki: spki,
    hash: "sha256" as const,
    sign: async (data: Buffer) => nodeSign("sha256", data, key),
    // Node signs data, not digests; the peer CA only signs OCSP responses, whole.
    signDigest: async (): Promise<Buffer> => {
      throw new Error("the peer's software CA signs whole data only");
    },
  };
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
        [
          {
            certIdDer: certIdFor("sha1", facts, serialHex),
            status: revokedAt ? "revoked" : "good",
            revokedAt,
            reason: revokedAt ? 1 : undefined,
            thisUpdate: now,
            nextUpdate: new Date(now.getTime() + 86_400_000),
          },
        ],
        { producedAt: now },
      );
    },
    ocspResponses: async (serialsHex) => {
      if (serialsHex.length === 0) return [];
      const template = await (async () => {
        const now = new Date(Math.floor(Date.now() / 1000) * 1000);
        return signOcspResponse(identity, [{ certIdDer: certIdFor("sha1", facts, serialsHex[0]!), status: "good", thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000) }], {
          producedAt: now,
        });
      })();
      const serial0 = Buffer.from(serialsHex[0]!, "hex");
      // OCSPResponse → [0] responseBytes → SEQ → OCTET STRING → BasicOCSPResponse
      const outer = tlvAt(template, 0);
      const status = tlvAt(template, outer.start);
      const explicit = tlvAt(template, status.end);
      const responseBytes = tlvAt(template, explicit.start);
      const oid = tlvAt(template, responseBytes.start);
      const octets = tlvAt(template, oid.end);
      const basic = tlvAt(template, octets.start);
      const tbs = tlvAt(template, basic.start);
      const sigAlg = tlvAt(template, tbs.end);
      const sigBits = tlvAt(template, sigAlg.end);
      const sigLength = sigBits.end - sigBits.start - 1;
      const serialAt = template.indexOf(serial0, tbs.start);
      if (serialAt < 0 || serialAt > tbs.end) throw new Error("template response does not contain its serial");
      const out: Buffer[] = [];
      for (const hex of serialsHex) {
        const serial = Buffer.from(hex, "hex");
        if (serial.length !== serial0.length) throw new Error("serials must all have the same length");
        const response = Buffer.from(template);
        serial.copy(response, serialAt);
        const toSign = response.subarray(tbs.headerStart, tbs.end);
        let sig: Buffer;
        do sig = nodeSign("sha256", toSign, key);
        while (sig.length !== sigLength);
        sig.copy(response, sigBits.start + 1);
        out.push(response);
      }
      return out;
    },
    ocspRequest: (serialHex, hash = "sha1") => ocspRequest(certIdFor(hash, facts, serialHex)),
  };
}

/** Serials like ours: 17 bytes, first byte 0x01. */
export const randomSerial = () => Buffer.concat([Buffer.from([0x01]), randomBytes(16)]).toString("hex");
