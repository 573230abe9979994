// RFC 8555 §6.2-6.3: every POST is a flattened JWS whose protected header carries the
// algorithm, a nonce, the exact request URL and either the account URL (kid) or, for
// newAccount and revokeCert, the public key itself (jwk). Signatures are checked by jose.
import { createPublicKey, type KeyObject } from "node:crypto";
import { type FlattenedJWSInput, type JWK, type JWSHeaderParameters, calculateJwkThumbprint, decodeProtectedHeader, flattenedVerify } from "jose";
import { AcmeProblem, malformed, unauthorized } from "./problems.ts";

/** Account key algorithms accepted (RFC 8555 §6.2 requires ES256 and suggests EdDSA). */
export const ACCOUNT_ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"] as const;
export const EAB_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
const MIN_RSA_BITS = 2048;

export interface VerifiedJws {
  header: JWSHeaderParameters & { url: string; nonce?: string };
  /** the parsed payload; undefined for POST-as-GET (empty payload) */
  payload: unknown;
  /** the key that signed: from the header's jwk, or the account's */
  jwk: JWK;
}

export function parseFlattened(body: unknown): FlattenedJWSInput {
  const jws = body as Partial<FlattenedJWSInput> & { header?: unknown; signatures?: unknown };
  if (typeof jws !== "object" || jws === null || Array.isArray(jws)) throw malformed("the request body must be a flattened JWS JSON object");
  if (jws.signatures !== undefined) throw malformed("the request must be a flattened JWS with one signature, not the general serialization");
  if (jws.header !== undefined) throw malformed("the JWS must not have an unprotected header");
  if (typeof jws.protected !== "string" || typeof jws.payload !== "string" || typeof jws.signature !== "string") throw malformed("the JWS needs string 'protected', 'payload' and 'signature' members");
  return { protected: jws.protected, payload: jws.payload, signature: jws.signature };
}

/**
 * The protected header, refusing the JWS extensions ACME never uses: an unencoded payload
 * (RFC 7797 `b64: false`) would make the signed bytes differ from the payload we parse, and
 * `crit` names extensions a verifier must understand.
 */
export function protectedHeader(jws: FlattenedJWSInput): JWSHeaderParameters {
  let header: JWSHeaderParameters;
  try {
    header = decodeProtectedHeader(jws) as JWSHeaderParameters;
  } catch (error) {
    throw malformed("the JWS protected header is not base64url JSON", error);
  }
  if (header.b64 !== undefined) throw malformed("the JWS protected header must not carry 'b64': ACME payloads are always base64url-encoded (RFC 8555 §6.2)");
  if (header.crit !== undefined) throw malformed("the JWS protected header must not carry 'crit': this server understands no JWS extensions");
  return header;
}

/** A public account key; refuses private keys, symmetric keys and short RSA keys. */
export async function accountKey(jwk: unknown, alg?: string): Promise<{ jwk: JWK; key: KeyObject }> {
  if (typeof jwk !== "object" || jwk === null) throw malformed("the 'jwk' header must be a JSON Web Key object");
  const k = jwk as JWK;
  if ("d" in k || "p" in k || "k" in k) throw new AcmeProblem("badPublicKey", "the jwk must be a public key (it holds private or symmetric key material)");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: k as import("node:crypto").JsonWebKey, format: "jwk" });
    if (key.type !== "public") throw new Error("not a public key");
    if (alg !== undefined && !keyFitsAlgorithm(key, alg)) throw new Error(`a ${key.asymmetricKeyType} key cannot sign ${alg}`);
  } catch (error) {
    throw new AcmeProblem("badPublicKey", `the jwk is not a usable ${alg ?? ""} public key: ${(error as Error).message}`, { cause: error });
  }
  if (k.kty === "RSA" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) throw new AcmeProblem("badPublicKey", `RSA account keys must be at least ${MIN_RSA_BITS} bits`);
  // Only the public members, so stored keys compare and thumbprint the same way.
  const pub = key.export({ format: "jwk" }) as JWK;
  return { jwk: pub, key };
}

/** Refuses a request signed with an algorithm its account key cannot produce (an ES384 header on a P-256 key). */
export function checkKeyAlgorithm(key: KeyObject, alg: string): void {
  if (!keyFitsAlgorithm(key, alg)) throw new AcmeProblem("badPublicKey", `the jwk is not a usable ${alg} public key: a ${key.asymmetricKeyType} key cannot sign ${alg}`);
}

function keyFitsAlgorithm(key: KeyObject, alg: string): boolean {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (alg === "ES256") return type === "ec" && curve === "prime256v1";
  if (alg === "ES384") return type === "ec" && curve === "secp384r1";
  if (alg === "RS256" || alg === "PS256") return type === "rsa";
  if (alg === "EdDSA") return type === "ed25519";
  return false;
}

export function checkAlgorithm(alg: unknown): asserts alg is (typeof ACCOUNT_ALGORITHMS)[number] {
  if (typeof alg !== "string" || !(ACCOUNT_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new AcmeProblem("badSignatureAlgorithm", `JWS algorithm '${String(alg).slice(0, 20)}' is not accepted; use one of ${ACCOUNT_ALGORITHMS.join(", ")}`, {
      extra: { algorithms: [...ACCOUNT_ALGORITHMS] },
    });
  }
}

export async function verifyWith(jws: FlattenedJWSInput, key: KeyObject | Uint8Array, algorithms: readonly string[]): Promise<unknown> {
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(jws, key, { algorithms: [...algorithms] }));
  } catch (error) {
    throw new AcmeProblem("malformed", `the JWS signature does not verify: ${(error as Error).message}`, { cause: error });
  }
  if (payload.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch (error) {
    throw malformed("the JWS payload is not JSON", error);
  }
}

export const thumbprint = (jwk: JWK) => calculateJwkThumbprint(jwk, "sha256");

/** Checks the protected header's url against the URL the request came to, query string included (RFC 8555 §6.4). */
export function checkUrl(header: JWSHeaderParameters, requestUrl: string): string {
  if (typeof header.url !== "string") throw malformed("the JWS protected header needs a 'url'");
  if (header.url !== requestUrl) throw unauthorized(`the JWS 'url' (${header.url.slice(0, 200)}) is not the URL this request was sent to (${requestUrl})`);
  return header.url;
}
