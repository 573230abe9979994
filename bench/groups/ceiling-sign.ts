// Ceiling: how fast the token signs a P-256 digest. A SoftHSM2 token in a temporary
// directory, one P-256 key (sensitive, non-extractable, as the CA's), then for a fixed time:
//  - raw C_SignInit + C_Sign on one session, synchronously (pkcs11js, handle held);
//  - raw C_SignInit + C_SignAsync on 4 sessions at once (libuv worker threads);
//  - packages/hsm Token.signer (session pool of 4, SHA-256 in Node, DER conversion), 32 in flight.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import pkcs11js from "pkcs11js";
import { Pkcs11Module, Token, softhsmConfig } from "@pki/hsm";
import type { Group, Result } from "../lib/types.ts";
import { attempt, timedLoop } from "../lib/measure.ts";

const MODULE = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((m) => existsSync(m));

const group: Group = async (ctx) => {
  if (!MODULE) return [{ id: "ceiling.sign.raw1", label: "token sign", unavailable: "SoftHSM2 is not installed" }];
  const module = Pkcs11Module.load(MODULE, { softhsmConf: softhsmConfig(ctx.tmp) });
  module.initToken("bench", "so-pin-1234", "user-pin-1234");
  const SESSIONS = 4;
  const token = Token.open({ modulePath: MODULE, label: "bench", pin: "user-pin-1234", sessions: SESSIONS });
  const key = await token.generateKeyPair("bench-p256", "ECDSA-P256");
  const api = module.api;
  const slot = module.findToken("bench")!.slotId;
  const sessions = Array.from({ length: SESSIONS }, () => api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  api.C_FindObjectsInit(sessions[0]!, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_LABEL, value: "bench-p256" },
  ]);
  const [handle] = api.C_FindObjects(sessions[0]!, 1);
  api.C_FindObjectsFinal(sessions[0]!);
  const mech = { mechanism: pkcs11js.CKM_ECDSA };
  const digest = createHash("sha256").update("benchmark").digest();
  const results: Result[] = [];
  const phase = { seconds: ctx.seconds, warmupSeconds: ctx.warmupSeconds };

  results.push(
    await attempt("ceiling.sign.raw1", "token sign, P-256, raw C_Sign, 1 session (sync)", ctx.log, async () => {
      const session = sessions[0]!;
      const out = Buffer.alloc(64);
      const loop = (until: number) => {
        let n = 0;
        while (performance.now() < until && n < 10_000_000) {
          api.C_SignInit(session, mech, handle!);
          api.C_Sign(session, digest, out);
          n++;
        }
        return n;
      };
      loop(performance.now() + phase.warmupSeconds * 1000);
      const t = performance.now();
      const n = loop(t + phase.seconds * 1000);
      const s = (performance.now() - t) / 1000;
      return { id: "ceiling.sign.raw1", label: "token sign, P-256, raw C_Sign, 1 session (sync)", value: n / s, unit: "signs/s", details: { ops: n, seconds: s } };
    }),
  );

  results.push(
    await attempt("ceiling.sign.rawN", `token sign, P-256, raw C_Sign, ${SESSIONS} sessions (async)`, ctx.log, async () => {
      const free = [...sessions];
      const r = await timedLoop(
        async () => {
          const session = free.pop()!;
          try {
            api.C_SignInit(session, mech, handle!);
            await api.C_SignAsync(session, digest, Buffer.alloc(64));
          } finally {
            free.push(session);
          }
        },
        { ...phase, concurrency: SESSIONS },
      );
      return { id: "ceiling.sign.rawN", label: `token sign, P-256, raw C_Sign, ${SESSIONS} sessions (async)`, value: r.rate, unit: "signs/s", details: { ...r } };
    }),
  );

  results.push(
    await attempt("ceiling.sign.signer", `token sign, P-256, packages/hsm Token.signer (${SESSIONS} sessions, 32 in flight)`, ctx.log, async () => {
      const signer = await token.signer(key.uri);
      const data = Buffer.alloc(400, 7); // about a leaf's to-be-signed size
      const r = await timedLoop(() => signer.sign(data), { ...phase, concurrency: 32 });
      return { id: "ceiling.sign.signer", label: `token sign, P-256, packages/hsm Token.signer (${SESSIONS} sessions, 32 in flight)`, value: r.rate, unit: "signs/s", details: { ...r } };
    }),
  );
  for (const s of sessions) api.C_CloseSession(s);
  token.close();
  return results;
};
export default group;
