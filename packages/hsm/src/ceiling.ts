import { createHash } from "node:crypto";
import { Pkcs11Module, pkcs11js } from "./module.ts";
import { HsmError } from "./errors.ts";

export interface RawSignRate {
  signsPerSecond: number;
  signs: number;
  seconds: number;
}

/**
 * The token's own P-256 signing rate, without anything this package adds (no pooling, no
 * hashing per call, no DER conversion): C_SignInit + C_Sign on a held key handle, on
 * `sessions` sessions at once. It is the ceiling the benchmarks compare issuance against;
 * it lives here because only this package talks PKCS#11. The token must already be logged
 * in (open a Token first).
 */
export async function rawSignRate(options: { modulePath: string; tokenLabel: string; keyLabel: string; sessions: number; seconds: number; warmupSeconds: number }): Promise<RawSignRate> {
  const module = Pkcs11Module.load(options.modulePath);
  const api = module.api;
  const slot = module.findToken(options.tokenLabel)?.slotId;
  if (slot === undefined) throw new HsmError("token_not_found", `no token labelled '${options.tokenLabel}'`);
  const sessions = Array.from({ length: options.sessions }, () => api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  try {
    api.C_FindObjectsInit(sessions[0]!, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: options.keyLabel },
    ]);
    const [key] = api.C_FindObjects(sessions[0]!, 1);
    api.C_FindObjectsFinal(sessions[0]!);
    if (key === undefined) throw new HsmError("key_not_found", `no key labelled '${options.keyLabel}' on '${options.tokenLabel}'`);
    const digest = createHash("sha256").update("benchmark").digest();
    const mechanism = { mechanism: pkcs11js.CKM_ECDSA };
    const run = async (until: number) => {
      let signs = 0;
      await Promise.all(
        sessions.map(async (session) => {
          while (performance.now() < until) {
            api.C_SignInit(session, mechanism, key);
            if (sessions.length === 1) api.C_Sign(session, digest, Buffer.alloc(64));
            else await api.C_SignAsync(session, digest, Buffer.alloc(64));
            signs++;
          }
        }),
      );
      return signs;
    };
    await run(performance.now() + options.warmupSeconds * 1000);
    const start = performance.now();
    const signs = await run(start + options.seconds * 1000);
    const seconds = (performance.now() - start) / 1000;
    return { signsPerSecond: signs / seconds, signs, seconds };
  } finally {
    for (const session of sessions) api.C_CloseSession(session);
  }
}
