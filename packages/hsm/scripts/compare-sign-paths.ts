// How much graphene-pk11 costs on the signing hot path against the raw pkcs11js binding,
// on a fresh SoftHSM2 token: ECDSA P-256 and RSA-2048, 1 and 4 sessions, each session
// alternating the two paths call by call (see compareSignPaths), several rounds.
//   node --import tsx packages/hsm/scripts/compare-sign-paths.ts [seconds] [rounds]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Pkcs11Module, Token, compareSignPaths, softhsmConfig } from "../src/index.ts";

const MODULE = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((m) => existsSync(m));
if (!MODULE) throw new Error("SoftHSM2 is not installed");
const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(path.join(tmpdir(), "pki-sign-paths-"));
try {
  Pkcs11Module.load(MODULE, { softhsmConf: softhsmConfig(dir) }).initToken("paths", "so-pin-1234", "user-pin-1234");
  const token = Token.open({ modulePath: MODULE, label: "paths", pin: "user-pin-1234", sessions: 1 });
  await token.generateKey("p256", "ECDSA-P256");
  await token.generateKey("rsa2048", "RSA-2048");
  for (const keyLabel of ["p256", "rsa2048"]) {
    for (const sessions of [1, 4]) {
      const ratios: number[] = [];
      const cpu: string[] = [];
      const rates: string[] = [];
      for (let round = 0; round < rounds; round++) {
        const r = await compareSignPaths({ modulePath: MODULE, tokenLabel: "paths", keyLabel, sessions, seconds, warmupSeconds: 0.5 });
        ratios.push(r.grapheneRelative);
        if (r.paths.pkcs11js.cpuMicros !== undefined) cpu.push(`${r.paths.pkcs11js.cpuMicros.toFixed(0)}/${r.paths.graphene.cpuMicros!.toFixed(0)}`);
        rates.push(`${((1000 / r.paths.pkcs11js.meanMs) * sessions).toFixed(0)}/${((1000 / r.paths.graphene.meanMs) * sessions).toFixed(0)}`);
      }
      const sorted = [...ratios].sort((a, b) => a - b);
      console.log(
        `${keyLabel}\t${sessions} session(s)\tgraphene/pkcs11js rate: median ${sorted[Math.floor(rounds / 2)]!.toFixed(3)} (min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)})\tsigns/s pkcs11js/graphene by round: ${rates.join(" ")}${cpu.length ? `\tCPU µs per sign pkcs11js/graphene by round: ${cpu.join(" ")}` : ""}`,
      );
    }
  }
  token.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
