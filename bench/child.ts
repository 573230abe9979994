// Runs one benchmark group in its own process (own PKCS#11 module, own crash domain) and
// writes its results as JSON to the file named by the second argument.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Group, GroupContext, Result } from "./lib/types.ts";
import { stopAll } from "./lib/proc.ts";

const [groupName, outFile] = process.argv.slice(2);
if (!groupName || !outFile) throw new Error("usage: child.ts <group> <out.json>");
const quick = process.env.BENCH_QUICK === "1";
const pgUrl = process.env.PKI_TEST_DATABASE_URL;
if (!pgUrl) throw new Error("PKI_TEST_DATABASE_URL is not set (run through npm run bench)");

// inside the run's own temporary directory, which the runner removes even if this process is killed
const tmp = mkdtempSync(path.join(process.env.BENCH_TMP ?? tmpdir(), `${groupName}-`));
const ctx: GroupContext = {
  quick,
  pgUrl,
  seconds: Number(process.env.BENCH_SECONDS ?? (quick ? 4 : 15)),
  warmupSeconds: Number(process.env.BENCH_WARMUP ?? (quick ? 1 : 3)),
  tmp,
  log: (message) => process.stderr.write(`  [${groupName}] ${message}\n`),
};

let results: Result[] = [];
let code = 0;
try {
  const mod = (await import(`./groups/${groupName}.ts`)) as { default: Group };
  results = await mod.default(ctx);
} catch (error) {
  process.stderr.write(`  [${groupName}] failed: ${(error as Error).stack ?? error}\n`);
  results = [{ id: `${groupName}.error`, label: groupName, unavailable: `group failed: ${(error as Error).message.split("\n")[0]!.slice(0, 300)}` }];
  code = 1;
} finally {
  stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
writeFileSync(outFile, JSON.stringify(results, null, 2));
process.exit(code);
