import { createHash, createPublicKey } from "node:crypto";
// The PKCS#11 side of the key algorithms: curve parameters, DigestInfo and signature
// encodings a token needs. The algorithms themselves are the CA's vocabulary, in @pki/x509.
import type { HashName, KeyAlgorithm } from "@pki/x509";

export { type HashName, type KeyAlgorithm, KEY_ALGORITHMS, hashFor, keyAlgorithmOfSpki } from "@pki/x509";

/** DER of the named-curve OID, as CKA_EC_PARAMS wants it. */
export const EC_PARAMS: Record<string, Buffer> = {
  "ECDSA-P256": Buffer.from("06082a8648ce3d030107", "hex"),
  "ECDSA-P384": Buffer.from("06052b81040022", "hex"),
};

// DigestInfo prefixes (RFC 8017 §9.2 note 1): hashing stays in Node, the token only does
// the raw PKCS#1 v1.5 operation, which every HSM supports.
export const DIGEST_INFO_PREFIX: Record<HashName, Buffer> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
};

export function digest(hash: HashName, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

/** PKCS#11 returns ECDSA signatures as r||s; X.509 wants DER SEQUENCE { r INTEGER, s INTEGER }. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return Buffer.concat([Buffer.from([0x30]), len, body]);
}

/** SubjectPublicKeyInfo DER from the public attributes the token returns. */
export function ecPublicKeySpki(algorithm: KeyAlgorithm, ecPoint: Buffer): Buffer {
  const size = algorithm === "ECDSA-P384" ? 48 : 32;
  // SoftHSM (and the spec) return CKA_EC_POINT as a DER OCTET STRING; some tokens return the raw point.
  let point = ecPoint;
  if (point.length !== 1 + 2 * size) {
    const lenByte = point[1]!;
    const offset = lenByte & 0x80 ? 2 + (lenByte & 0x7f) : 2;
    point = point.subarray(offset);
  }
  if (point.length !== 1 + 2 * size || point[0] !== 0x04) throw new Error("token returned an EC point this CA cannot read");
  const b64u = (b: Buffer) => b.toString("base64url");
  const key = createPublicKey({
    key: { kty: "EC", crv: algorithm === "ECDSA-P384" ? "P-384" : "P-256", x: b64u(point.subarray(1, 1 + size)), y: b64u(point.subarray(1 + size)) },
    format: "jwk",
  });
  return key.export({ type: "spki", format: "der" });
}

export function rsaPublicKeySpki(modulus: Buffer, exponent: Buffer): Buffer {
  const key = createPublicKey({ key: { kty: "RSA", n: modulus.toString("base64url"), e: exponent.toString("base64url") }, format: "jwk" });
  return key.export({ type: "spki", format: "der" });
}
