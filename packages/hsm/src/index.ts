export type { KeyManager, KeyBackend, ProvisionRequest, ProvisionedKeyStore, Signer, KeyInfo } from "./key-manager.ts";
export { Pkcs11KeyBackend, isSoftHsm, type Pkcs11BackendOptions } from "./pkcs11-backend.ts";
export { Pkcs11Module, type SlotToken } from "./module.ts";
export { Token } from "./token.ts";
export { HsmError } from "./errors.ts";
export { formatKeyUri, parseKeyUri, type KeyAddress } from "./uri.ts";
export { type KeyAlgorithm, KEY_ALGORITHMS, keyAlgorithmOfSpki, hashFor } from "./algorithms.ts";
export { softhsmConfig } from "./softhsm.ts";
export { rawSignRate, compareSignPaths, type RawSignRate, type SignPathComparison } from "./ceiling.ts";
