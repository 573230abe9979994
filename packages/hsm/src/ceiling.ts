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

export type SignPath = "pkcs11js" | "graphene";

export interface SignPathComparison {
  /**
   * per path: signatures made, their mean latency (C_SignInit to signature, ms) and, with
   * one session only (where each call has the process to itself), the process CPU time a
   * signature took, µs: the token's work plus the binding's
   */
  paths: Record<SignPath, { signs: number; meanMs: number; cpuMicros?: number }>;
  /** graphene's signing rate relative to pkcs11js's (mean latency of pkcs11js / graphene): below 1 is slower */
  grapheneRelative: number;
}

/**
 * Compares the two ways this package can make its hot-path call: `pkcs11js` is
 * C_SignInit + C_SignAsync on the raw binding (what this package did before
 * graphene-pk11), `graphene` is graphene-pk11's `session.createSign(...).once(data,
 * callback)` (what `Token.signer` does). Both hold the key handle and sign a precomputed
 * digest on `sessions` sessions at once, as a `Signer` does; the key (EC or RSA) is found
 * by label. Every session alternates the two paths call by call, so a machine shared with
 * other work slows both alike; the answer is the ratio of their mean latencies.
 */
export async function compareSignPaths(options: { modulePath: string; tokenLabel: string; keyLabel: string; sessions: number; seconds: number; warmupSeconds: number }): Promise<SignPathComparison> {
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
    const outputSize = isEc ? 64 : (key.getAttribute("modulus") as Buffer).length;
    const api = module.api;
    const rawMechanism = { mechanism: isEc ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_RSA_PKCS };
    const mechanism = isEc ? graphene.MechanismEnum.ECDSA : graphene.MechanismEnum.RSA_PKCS;
    const signWith: Record<SignPath, (session: graphene.Session) => Promise<unknown>> = {
      pkcs11js: (session) => {
        api.C_SignInit(session.handle, rawMechanism, key.handle);
        return api.C_SignAsync(session.handle, input, Buffer.alloc(outputSize));
      },
      graphene: (session) => new Promise<void>((resolve, reject) => session.createSign(mechanism, key).once(input, (error) => (error ? reject(error) : resolve()))),
    };
    const order: SignPath[] = ["pkcs11js", "graphene"];
    const run = async (until: number) => {
      const totals = { pkcs11js: { signs: 0, ms: 0, cpu: 0 }, graphene: { signs: 0, ms: 0, cpu: 0 } };
      const alone = sessions.length === 1;
      await Promise.all(
        sessions.map(async (session, index) => {
          for (let call = index; performance.now() < until; call++) {
            const path = order[call % 2]!;
            const cpu = alone ? process.cpuUsage() : undefined;
            const start = performance.now();
            await signWith[path](session);
            totals[path].ms += performance.now() - start;
            if (cpu) {
              const used = process.cpuUsage(cpu);
              totals[path].cpu += used.user + used.system;
            }
            totals[path].signs++;
          }
        }),
      );
      return totals;
    };
    await run(performance.now() + options.warmupSeconds * 1000);
    const totals = await run(performance.now() + options.seconds * 1000);
    const mean = (path: SignPath) => totals[path].ms / totals[path].signs;
    const of = (path: SignPath) => ({
      signs: totals[path].signs,
      meanMs: mean(path),
      ...(sessions.length === 1 ? { cpuMicros: totals[path].cpu / totals[path].signs } : {}),
    });
    return {
      paths: { pkcs11js: of("pkcs11js"), graphene: of("graphene") },
      grapheneRelative: mean("pkcs11js") / mean("graphene"),
    };
  } finally {
    for (const session of sessions) session.close();
  }
}
