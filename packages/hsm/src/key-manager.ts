import type { HashName, KeyAlgorithm } from "./algorithms.ts";

// What the authority needs from wherever its keys live. PKCS#11 (`Pkcs11KeyBackend`, a
// `Token` per key store) is the one implementation; a cloud KMS would be another class
// implementing these two interfaces, with its own key URI scheme. Nothing above this
// package holds a slot, a session or an object handle, only key URIs and `Signer`s.

/** What everything above this package holds instead of a slot, a session or a handle. */
export interface Signer {
  readonly keyUri: string;
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER */
  readonly publicKeySpki: Buffer;
  /** the hash this key signs with (SHA-384 for P-384, SHA-256 otherwise) */
  readonly hash: HashName;
  /** Signs `data` (hashing it first) and returns the signature as X.509 carries it. */
  sign(data: Buffer): Promise<Buffer>;
  /** Signs a `hash` digest the caller computed, for data streamed through the hash rather than held whole (large CRLs). */
  signDigest(digest: Buffer): Promise<Buffer>;
}

export interface KeyInfo {
  /** the key's address, stable across runs (RFC 7512 `pkcs11:` URI for PKCS#11) */
  uri: string;
  label: string;
  algorithm: KeyAlgorithm;
  publicKeySpki: Buffer;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

/** One key store (a PKCS#11 token, a KMS key ring), opened and authenticated. */
export interface KeyManager {
  /** the key store's name (the token label) */
  readonly label: string;
  /**
   * Generates a signing key pair inside the key store: the private half is sensitive and
   * never extractable. Refuses a label already in use.
   */
  generateKey(label: string, algorithm: KeyAlgorithm): Promise<KeyInfo>;
  /** The key at `uri`, or undefined when there is none. */
  findKey(uri: string): Promise<KeyInfo | undefined>;
  /** A signer for the key at `uri`; throws when there is no such key. */
  signer(uri: string): Promise<Signer>;
  /** The key's SubjectPublicKeyInfo (DER); throws when there is no such key. */
  publicKeySpki(uri: string): Promise<Buffer>;
  /** Destroys the key pair; returns how many objects went, 0 when it was already gone. */
  destroyKey(uri: string): Promise<number>;
  /** Every signing key in the key store. */
  listKeys(): Promise<KeyInfo[]>;
  /** Connections to the key store in use, idle and waited for, for the metrics. */
  stats(): { sessions: number; idle: number; waiting: number };
  close(): void;
}

export interface ProvisionRequest {
  label: string;
  /** the user PIN to set on a new key store; one is generated when absent */
  pin?: string;
  /** the security officer PIN of a new key store (where the backend has one); generated when absent */
  soPin?: string;
}

export interface ProvisionedKeyStore {
  label: string;
  /** false when it already existed (nothing was changed) */
  created: boolean;
  /** only when created and no PIN was given: the generated user PIN, for the caller to keep */
  generatedPin?: string;
  /** only when created and no SO PIN was given: the generated security officer PIN, for the caller to keep */
  soPin?: string;
}

/** Where key stores come from: provisioning and opening them. */
export interface KeyBackend {
  /** "pkcs11" here; a KMS implementation names itself */
  readonly kind: string;
  /** Makes sure the key store exists, creating it when this backend may. Idempotent. */
  provision(request: ProvisionRequest): Promise<ProvisionedKeyStore>;
  /** Opens and authenticates to an existing key store. */
  open(request: { label: string; pin: string; sessions?: number }): Promise<KeyManager>;
}
