// One full CRL, built and signed by our CrlPublisher in a process of its own (so its peak
// RSS is the CRL build's, plus the runtime's baseline, which is reported separately).
// Prints one JSON line: seconds for publishFull, entries, DER bytes, RSS figures.
import { writeFileSync } from "node:fs";
import { loadConfig } from "@pki/config";
import { CrlPublisher, openCa, systemClock } from "@pki/ca-core";

const out = process.argv[2]!;
const config = loadConfig(process.env);
const runtime = await openCa(config, systemClock);
const issuerId = runtime.keyring.active().record.id;
const publisher = new CrlPublisher({ inventory: runtime.inventory, keyring: runtime.keyring, config, clock: systemClock });
const baselineRssMB = process.memoryUsage().rss / 1024 / 1024;
const t = performance.now();
const meta = await publisher.publishFull(issuerId);
const seconds = (performance.now() - t) / 1000;
const crl = await runtime.inventory.crls.read(issuerId, "full");
if (crl) writeFileSync(out, crl.der);
console.log(`BENCH_JSON ${JSON.stringify({ seconds, entries: meta.entries, derBytes: crl?.der.length ?? 0, baselineRssMB, maxRssMB: process.resourceUsage().maxRSS / 1024 })}`);
await runtime.close();
process.exit(0);
