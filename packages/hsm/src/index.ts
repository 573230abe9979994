export { Pkcs11Module, type SlotToken } from "./module.ts";
export { Token, type Signer, type KeyInfo } from "./token.ts";
export { HsmError } from "./errors.ts";
export { formatKeyUri, parseKeyUri, type KeyAddress } from "./uri.ts";
export { type KeyAlgorithm, KEY_ALGORITHMS, keyAlgorithmOfSpki, hashFor } from "./algorithms.ts";
export { softhsmConfig } from "./softhsm.ts";
export { rawSignRate, type RawSignRate } from "./ceiling.ts";
