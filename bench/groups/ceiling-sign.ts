// Ceiling: how fast the token signs a P-256 digest. A SoftHSM2 token in a temporary
// directory, one P-256 key (sensitive, non-extractable, as the CA's), then for a fixed time:
//  - raw C_SignInit + C_Sign on one session, synchronously (rawSignRate in packages/hsm);
//  - raw C_SignInit + C_SignAsync on 4 sessions at once (libuv worker threads);
//  - packages/hsm Token.signer (session pool of 4, SHA-256 in Node, DER conversion), 32 in flight.
import { existsSync } from "node:fs";
import { Pkcs11Module, Token, rawSignRate, softhsmConfig } from "@pki/hsm";
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
  const digestRate = (sessions: number) => rawSignRate({ modulePath: MODULE, tokenLabel: "bench", keyLabel: "bench-p256", sessions, seconds: ctx.seconds, warmupSeconds: ctx.warmupSeconds });
  const results: Result[] = [];
  const phase = { seconds: ctx.seconds, warmupSeconds: ctx.warmupSeconds };

  results.push(
    await attempt("ceiling.sign.raw1", "token sign, P-256, raw C_Sign, 1 session (sync)", ctx.log, async () => {
      const r = await digestRate(1);
      return { id: "ceiling.sign.raw1", label: "token sign, P-256, raw C_Sign, 1 session (sync)", value: r.signsPerSecond, unit: "signs/s", details: { ops: r.signs, seconds: r.seconds } };
    }),
  );

  results.push(
    await attempt("ceiling.sign.rawN", `token sign, P-256, raw C_Sign, ${SESSIONS} sessions (async)`, ctx.log, async () => {
      const r = await digestRate(SESSIONS);
      return { id: "ceiling.sign.rawN", label: `token sign, P-256, raw C_Sign, ${SESSIONS} sessions (async)`, value: r.signsPerSecond, unit: "signs/s", details: { ops: r.signs, seconds: r.seconds } };
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
  token.close();
  return results;
};
export default group;
