import { createHash } from "node:crypto";
import { Pkcs11Module, graphene, pkcs11js } from "./module.ts";
import { DIGEST_INFO_PREFIX } from "./algorithms.ts";
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

/**
 * Signing rate of one hot-path implementation, for choosing between them: `pkcs11js` is
 * C_SignInit + C_SignAsync on the raw binding (what this package did before graphene-pk11),
 * `graphene` is graphene-pk11's `session.createSign(...).once(data, callback)` (what
 * `Token.signer` does). Both hold the key handle and sign a precomputed digest on
 * `sessions` sessions at once, as a `Signer` does; the key (EC or RSA) is found by label.
 */
export async function signPathRate(options: {
  path: "pkcs11js" | "graphene";
  modulePath: string;
  tokenLabel: string;
  keyLabel: string;
  sessions: number;
  seconds: number;
  warmupSeconds: number;
}): Promise<RawSignRate> {
  const module = Pkcs11Module.load(options.modulePath);
  const slot = module.slotOf(options.tokenLabel);
  if (slot === undefined) throw new HsmError("token_not_found", `no token labelled '${options.tokenLabel}'`);
  const sessions = Array.from({ length: options.sessions }, () => slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION));
  try {
    const found = sessions[0]!.find({ class: graphene.ObjectClass.PRIVATE_KEY, label: options.keyLabel });
    if (found.length === 0) throw new HsmError("key_not_found", `no key labelled '${options.keyLabel}' on '${options.tokenLabel}'`);
    const key = found.items(0).toType<graphene.PrivateKey>();
    const isEc = key.getAttribute("keyType") === graphene.KeyType.EC;
    const hashed = createHash("sha256").update("benchmark").digest();
    const input = isEc ? hashed : Buffer.concat([DIGEST_INFO_PREFIX.sha256, hashed]);
    const outputSize = isEc ? 64 : ((key.getAttribute("modulus") as Buffer | undefined)?.length ?? 512);
    const api = module.api;
    const rawMechanism = { mechanism: isEc ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_RSA_PKCS };
    const mechanism = isEc ? graphene.MechanismEnum.ECDSA : graphene.MechanismEnum.RSA_PKCS;
    const signOnce =
      options.path === "pkcs11js"
        ? async (session: graphene.Session) => {
            api.C_SignInit(session.handle, rawMechanism, key.handle);
            await api.C_SignAsync(session.handle, input, Buffer.alloc(outputSize));
          }
        : (session: graphene.Session) => new Promise<void>((resolve, reject) => session.createSign(mechanism, key).once(input, (error) => (error ? reject(error) : resolve())));
    const run = async (until: number) => {
      let signs = 0;
      await Promise.all(
        sessions.map(async (session) => {
          while (performance.now() < until) {
            await signOnce(session);
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
    for (const session of sessions) session.close();
  }
}
