import { createHash, createPublicKey } from "node:crypto";
import { DerError, TAG, children, contents, decodeOid, expectTag, readTlv } from "@pki/der";

/** Key algorithms a CA key or a certificate request key may use. Anything weaker is refused. */
export type KeyAlgorithm = "ECDSA-P256" | "ECDSA-P384" | "RSA-2048" | "RSA-3072" | "RSA-4096";
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"];

export type HashName = "sha256" | "sha384";

export function hashFor(algorithm: KeyAlgorithm): HashName {
  return algorithm === "ECDSA-P384" ? "sha384" : "sha256";
}

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

const CURVE_NAMES: Record<string, string> = {
  "1.2.840.10045.3.1.7": "prime256v1",
  "1.3.132.0.34": "secp384r1",
  "1.3.132.0.35": "secp521r1",
  "1.3.132.0.10": "secp256k1",
  "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
};
const OTHER_KEY_TYPES: Record<string, string> = {
  "1.3.101.112": "ed25519",
  "1.3.101.113": "ed448",
  "1.3.101.110": "x25519",
  "1.2.840.113549.1.1.10": "rsa-pss",
  "1.2.840.10040.4.1": "dsa",
};

const bitLength = (magnitude: Buffer): number => {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]!));
};

/**
 * Reads the algorithm of any SPKI, with the same names used for keys on the token, by
 * walking its DER (Node's createPublicKey costs ~130 µs a call, on every issuance path).
 * It checks structure only; CSR intake also verifies a signature with the key, which makes
 * OpenSSL check the point is on the curve.
 */
export function keyAlgorithmOfSpki(spki: Buffer): KeyAlgorithm | { unsupported: string } {
  try {
    const outer = readTlv(spki);
    if (outer.end !== spki.length) return { unsupported: "the public key has trailing data" };
    const [algorithmId, keyBits] = children(spki, expectTag(outer, TAG.SEQUENCE, "SubjectPublicKeyInfo"));
    const [algorithmOid, params] = children(spki, expectTag(algorithmId!, TAG.SEQUENCE, "AlgorithmIdentifier"));
    const algorithm = decodeOid(contents(spki, expectTag(algorithmOid!, TAG.OID, "algorithm")));
    const key = contents(spki, expectTag(keyBits!, TAG.BIT_STRING, "subjectPublicKey"));
    if (key[0] !== 0) return { unsupported: "the public key bit string has unused bits" };
    const keyBytes = key.subarray(1);
    if (algorithm === "1.2.840.10045.2.1") {
      if (!params || params.tag !== TAG.OID) return { unsupported: "EC keys with explicit parameters are not allowed; use a named curve (P-256 or P-384)" };
      const curveOid = decodeOid(contents(spki, params));
      const size = curveOid === "1.2.840.10045.3.1.7" ? 32 : curveOid === "1.3.132.0.34" ? 48 : 0;
      if (!size) return { unsupported: `EC curve ${CURVE_NAMES[curveOid] ?? curveOid} is not allowed; use P-256 or P-384` };
      if (keyBytes.length !== 1 + 2 * size || keyBytes[0] !== 0x04) return { unsupported: "EC public keys must be uncompressed points on the named curve" };
      return size === 32 ? "ECDSA-P256" : "ECDSA-P384";
    }
    if (algorithm === "1.2.840.113549.1.1.1") {
      const rsaKey = readTlv(keyBytes);
      const [modulus, exponent] = children(keyBytes, expectTag(rsaKey, TAG.SEQUENCE, "RSAPublicKey"));
      const bits = bitLength(contents(keyBytes, expectTag(modulus!, TAG.INTEGER, "modulus")));
      const e = BigInt(`0x${contents(keyBytes, expectTag(exponent!, TAG.INTEGER, "exponent")).toString("hex") || "0"}`);
      if (bits < 2048) return { unsupported: `RSA keys must be at least 2048 bits (this one has ${bits})` };
      if (bits > 4096) return { unsupported: `RSA keys may be at most 4096 bits (this one has ${bits})` };
      if (e !== 65537n) return { unsupported: `RSA public exponent must be 65537 (this one is ${e})` };
      if (bits === 2048 || bits === 3072 || bits === 4096) return `RSA-${bits}`;
      return { unsupported: `RSA key size ${bits} is not one of 2048, 3072, 4096` };
    }
    const name = OTHER_KEY_TYPES[algorithm] ?? `algorithm ${algorithm}`;
    return { unsupported: `${name} keys are not allowed; use ECDSA P-256/P-384 or RSA 2048-4096` };
  } catch (error) {
    return { unsupported: error instanceof DerError ? `the public key cannot be parsed (${error.message})` : "the public key cannot be parsed" };
  }
}
