/** A token problem, phrased for an operator. Never carries a PIN. */
export class HsmError extends Error {
  constructor(
    readonly code: "module_not_found" | "token_not_found" | "bad_pin" | "key_not_found" | "token_unavailable" | "token_exists" | "unsupported",
    message: string,
  ) {
    super(message);
    this.name = "HsmError";
  }
}

/** pkcs11js errors carry the CKR_ name in the message; map the ones an operator can act on. */
export function describePkcs11Error(error: unknown, context: string): HsmError {
  if (error instanceof HsmError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/CKR_PIN_INCORRECT|CKR_PIN_LEN_RANGE|CKR_PIN_INVALID/.test(message)) return new HsmError("bad_pin", `${context}: the token rejected the PIN`);
  if (/CKR_PIN_LOCKED/.test(message)) return new HsmError("bad_pin", `${context}: the token's PIN is locked`);
  if (/CKR_TOKEN_NOT_PRESENT|CKR_DEVICE_REMOVED|CKR_SESSION_HANDLE_INVALID|CKR_SESSION_CLOSED|CKR_CRYPTOKI_NOT_INITIALIZED|CKR_DEVICE_ERROR/.test(message)) {
    return new HsmError("token_unavailable", `${context}: the token is unavailable (${message.match(/CKR_\w+/)?.[0] ?? "device error"})`);
  }
  return new HsmError("token_unavailable", `${context}: ${message.match(/CKR_\w+/)?.[0] ?? message}`);
}
