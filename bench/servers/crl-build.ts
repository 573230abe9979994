// One full CRL, built and signed by our CrlPublisher in a process of its own (so its peak
// RSS is the CRL build's, plus the runtime's baseline, which is reported separately). The
// CRL is not read back here (the group reads it from the database for openssl), so the
// process's peak is what publishing costs.
// Prints one JSON line: seconds for publishFull, entries, RSS figures.
import { loadConfig } from "@pki/config";
import { CrlPublisher } from "@pki/revocation";
import { openCa, systemClock } from "@pki/authority";

const config = loadConfig(process.env);
const runtime = await openCa(config, systemClock);
const issuerId = runtime.keyring.active().record.id;
const publisher = new CrlPublisher({ inventory: runtime.inventory, keyring: runtime.keyring, config, clock: systemClock });
const baselineRssMB = process.memoryUsage().rss / 1024 / 1024;
const t = performance.now();
const meta = await publisher.publishFull(issuerId);
const seconds = (performance.now() - t) / 1000;
console.log(`BENCH_JSON ${JSON.stringify({ seconds, issuerId, entries: meta.entries, baselineRssMB, maxRssMB: process.resourceUsage().maxRSS / 1024 })}`);
await runtime.close();
process.exit(0);
