import type { KeyAlgorithm } from "./algorithms.ts";

/** What the encoders need of a signing key; the key manager's signers provide it. */
export interface Signer {
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER */
  readonly publicKeySpki: Buffer;
  /** Signs `data` (hashing it first) and returns the signature as X.509 carries it. */
  sign(data: Buffer): Promise<Buffer>;
  /** Signs a digest the caller computed, for data streamed through the hash rather than held whole. */
  signDigest(digest: Buffer): Promise<Buffer>;
}
