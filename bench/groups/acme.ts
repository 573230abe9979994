// ACME: complete orders per second (newOrder → http-01 validation → finalize → download),
// 32 concurrent clients, ours and pebble side by side in one run, driven by the same load
// generator (bench/lib/acme-load.ts) and the same http-01 responder and DNS server:
//  - pebble (Debian's `pebble`, Let's Encrypt's ACME test server) with its artificial
//    behaviour off: PEBBLE_VA_NOSLEEP=1 (no random 0-15 s sleep before validating),
//    PEBBLE_WFE_NONCEREJECT=0 (no deliberately refused nonces), PEBBLE_AUTHZREUSE=0 (every
//    order is validated), PEBBLE_VA_ALWAYS_VALID=0 (it really fetches the token). It keeps
//    everything in memory and signs with a software RSA-2048 intermediate. Its HTTPS
//    listener gets a throwaway self-signed P-256 certificate made here (Debian ships no
//    test certificates); the load generator trusts exactly that certificate.
//  - ours: apps/api as its own process (the API role, as production runs it) on a fresh
//    PostgreSQL database and a SoftHSM token, an ACME provisioner for DNS:.bench.test
//    made over POST /v1/provisioners, the order rate limits raised out of the way, and the
//    load generator trusting the CA's root. Everything is stored (accounts, nonces, orders,
//    authorizations, challenges, certificates, audit) and every certificate is signed on the
//    token; the rows that reached `valid` during the measurement are counted.
// Both validate http-01 for real: every ordered name is answered 127.0.0.1 by the test DNS
// server (test/support/dns-server.ts; pebble's -dnsserver, our PKI_ACME_RESOLVER) and
// fetched from the load generator's responder (pebble's httpPort, our
// PKI_ACME_HTTP01_PORT). Both are reached over HTTPS with keep-alive on a P-256 listener
// certificate. The servers run one at a time, ours first.
// Besides orders/s and order latency, each row has the server's CPU per order over the
// window (/proc), and ours the CPU of the PostgreSQL backends serving it and the commits per
// order. Pebble 2.4 deadlocks under this load: a window in which no order completes for
// 5 s ends there, and pebble is measured again on a fresh instance (PEBBLE_ATTEMPTS).
// BENCH_ACME_SERVERS=ours|pebble measures one of them; BENCH_ACME_PROFILE_DIR=<dir> writes
// a V8 CPU profile of our API process.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { TestDnsServer } from "../../test/support/dns-server.ts";
import { acmeLoad, Http01Responder, type AcmeLoadOptions, type AcmeLoadResult, type AcmeTarget } from "../lib/acme-load.ts";
import { createCa } from "../lib/ca.ts";
import { httpsCall, waitForHttps } from "../lib/https.ts";
import { attempt } from "../lib/measure.ts";
import { freePort, run, start, which } from "../lib/proc.ts";
import type { Group, GroupContext, Result } from "../lib/types.ts";
import { countValid, startApiProcess } from "./ours-issue.ts";

const CLIENTS = 32;
const DOMAIN = "bench.test";
const PEBBLE_ATTEMPTS = 5;

interface Shared {
  dns: TestDnsServer;
  responder: Http01Responder;
}

function load(ctx: GroupContext, shared: Shared, target: AcmeTarget, aroundMeasurement?: AcmeLoadOptions["aroundMeasurement"]): Promise<AcmeLoadResult> {
  return acmeLoad({
    aroundMeasurement,
    target,
    responder: shared.responder,
    clients: CLIENTS,
    seconds: ctx.seconds,
    warmupSeconds: ctx.warmupSeconds,
    domain: DOMAIN,
    nameAdded: (name) => shared.dns.add(name, { type: "A", data: "127.0.0.1" }),
    nameRemoved: (name) => shared.dns.remove(name),
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of a process and its direct children (the API's workers), live ones only. */
function treeCpuSeconds(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  return cpuSeconds(pid) + children.reduce((sum, child) => sum + cpuSeconds(child), 0);
}

/** Measurement hooks reading a server process's CPU time (with its workers') over the window. */
function serverCpu(pid: number) {
  let before = 0;
  let after = 0;
  return {
    start: async () => void (before = treeCpuSeconds(pid)),
    end: async () => void (after = treeCpuSeconds(pid)),
    /** cores used and CPU milliseconds per completed order over the window */
    summary: (r: AcmeLoadResult) => ({
      serverCores: Number(((after - before) / r.seconds).toFixed(2)),
      serverCpuMsPerOrder: r.orders ? Number((((after - before) * 1000) / r.orders).toFixed(1)) : null,
    }),
  };
}

function details(r: AcmeLoadResult): Record<string, unknown> {
  return {
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    errors: r.errors,
    ...(r.firstError ? { firstError: r.firstError } : {}),
    orders: r.orders,
    seconds: r.seconds,
    requestsPerOrder: Number(r.requestsPerOrder.toFixed(1)),
    badNonceRetries: r.badNonceRetries,
    loadGeneratorCores: Number(r.loadGeneratorCores.toFixed(2)),
    ...(r.stalled ? { stalled: `no order completed for 5 s after ${r.seconds.toFixed(1)} s of the window: the window ends there` } : {}),
    phaseP50ms: Object.fromEntries(Object.entries(r.phaseP50).map(([k, v]) => [k, Number(v.toFixed(1))])),
  };
}

async function ours(ctx: GroupContext, shared: Shared): Promise<Result> {
  const ca = await createCa(ctx.pgUrl, ctx.tmp, {
    PKI_ACME_RESOLVER: shared.dns.address,
    PKI_ACME_HTTP01_PORT: String(shared.responder.port),
    // the defaults (300 / 10,000 orders an hour, 20 new accounts per address) are abuse limits, not part of the measure
    PKI_ACME_ORDERS_PER_ACCOUNT_HOUR: "1000000",
    PKI_ACME_ORDERS_PER_PROVISIONER_HOUR: "1000000",
    PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR: "1000000",
  });
  try {
    // BENCH_ACME_PROFILE_DIR=<dir>: a V8 CPU profile of our API process, written when it stops
    const profileDir = process.env.BENCH_ACME_PROFILE_DIR;
    const api = await startApiProcess(ca, profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [], { app: "api", workers: "auto" });
    if (typeof api === "string") return { id: "ours.acme.orders", label: "ACME orders, ours", unavailable: api };
    try {
      const created = await httpsCall(`${api.url}/v1/provisioners`, api.rootPem, {
        method: "POST",
        headers: { authorization: `Bearer ${ca.adminToken}` },
        body: JSON.stringify({ name: "bench", type: "acme", profiles: ["server"], names: [`DNS:.${DOMAIN}`], maxTtlSeconds: 86400 }),
      });
      if (created.status !== 201) throw new Error(`POST /v1/provisioners (type acme) answered ${created.status}: ${created.text.slice(0, 300)}`);
      // certificates stored and database transactions committed inside the measurement window
      const db = new pg.Client({ connectionString: ca.dbUrl });
      await db.connect();
      // the CPU of the PostgreSQL backends serving this database (the API's pool), by pid
      const backendCpu = async () => {
        const { rows } = await db.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        const cpu = new Map<number, number>();
        for (const { pid } of rows as Array<{ pid: number }>) {
          try {
            cpu.set(pid, cpuSeconds(pid));
          } catch {} // a backend that has just exited
        }
        return cpu;
      };
      const counters = async () => {
        const certs = await countValid(ca.dbUrl);
        const { rows } = await db.query("SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()");
        return { certs, commits: Number(rows[0].n), backends: await backendCpu() };
      };
      let first = { certs: 0, commits: 0, backends: new Map<number, number>() };
      let last = { certs: 0, commits: 0, backends: new Map<number, number>() };
      const cpu = serverCpu(api.pid);
      let r: AcmeLoadResult;
      try {
        r = await load(
          ctx,
          shared,
          { directoryUrl: `${api.url}/acme/bench/directory`, ca: api.rootPem },
          {
            start: async () => {
              first = await counters();
              await cpu.start();
            },
            end: async () => {
              await cpu.end();
              last = await counters();
            },
          },
        );
      } finally {
        await db.end();
      }
      const stored = last.certs - first.certs;
      const commitsPerOrder = r.orders ? Number(((last.commits - first.commits) / r.orders).toFixed(1)) : null;
      let postgresSeconds = 0;
      for (const [pid, seconds] of last.backends) postgresSeconds += seconds - (first.backends.get(pid) ?? 0);
      if (r.errors > 0) ctx.log(`ours: ${r.errors} failed orders, first: ${r.firstError}`);
      return {
        id: "ours.acme.orders",
        label: `ACME complete orders (http-01, ${CLIENTS} clients), apps/api + PostgreSQL + token`,
        value: r.rate,
        unit: "orders/s",
        details: {
          ...details(r),
          ...cpu.summary(r),
          certificatesStored: stored,
          commitsPerOrder,
          postgresCores: Number((postgresSeconds / r.seconds).toFixed(2)),
          postgresCpuMsPerOrder: r.orders ? Number(((postgresSeconds * 1000) / r.orders).toFixed(1)) : null,
          note: `${stored} certificates stored in the window; ~${commitsPerOrder} PostgreSQL commits per order (pg_stat_database, approximate); PostgreSQL backends ${r.orders ? ((postgresSeconds * 1000) / r.orders).toFixed(1) : "?"} ms CPU per order`,
        },
      };
    } finally {
      await api.stop();
    }
  } finally {
    await ca.cleanup();
  }
}

async function pebble(ctx: GroupContext, shared: Shared): Promise<Result> {
  if (!which("pebble")) return { id: "peer.pebble.orders", label: "ACME orders, pebble", unavailable: "pebble is not installed (bench/setup.sh installs Debian's pebble)" };
  const dir = path.join(ctx.tmp, "pebble");
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  // its HTTPS listener's certificate, trusted as is by the load generator
  run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    "/CN=pebble bench",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ]);
  const certPem = readFileSync(cert, "utf8");
  // Debian's pebble 2.4 can deadlock under this load (every handler waits on its in-memory
  // store's lock): a stalled run is measured again on a fresh pebble, up to PEBBLE_ATTEMPTS
  // times, until one window runs its full length; the longest window counts and the stalls
  // are reported.
  const stalls: string[] = [];
  let best: (AcmeLoadResult & ReturnType<ReturnType<typeof serverCpu>["summary"]>) | undefined;
  for (let attempt = 0; attempt < PEBBLE_ATTEMPTS && (!best || best.stalled); attempt++) {
    const r = await withPebble(shared, dir, cert, key, certPem, async (directoryUrl, pid) => {
      const cpu = serverCpu(pid);
      const result = await load(ctx, shared, { directoryUrl, ca: certPem }, cpu);
      return { ...result, ...cpu.summary(result) };
    });
    if (r.errors > 0) ctx.log(`pebble: ${r.errors} failed orders, first: ${r.firstError}`);
    if (r.stalled) {
      stalls.push(`after ${r.seconds.toFixed(1)} s (${r.orders} orders) of the window`);
      ctx.log(`pebble stopped answering ${stalls.at(-1)}`);
    }
    if (!best || r.seconds > best.seconds) best = r;
  }
  const r = best!;
  return {
    id: "peer.pebble.orders",
    label: `pebble, ACME complete orders (http-01, ${CLIENTS} clients; in memory, software RSA key)`,
    value: r.rate,
    unit: "orders/s",
    details: {
      ...details(r),
      serverCores: r.serverCores,
      serverCpuMsPerOrder: r.serverCpuMsPerOrder,
      ...(stalls.length ? { pebbleStalls: stalls, note: `pebble deadlocked ${stalls.length}× (${stalls.join("; ")}); restarted, the longest window counts` } : {}),
    },
  };
}

/** Runs `fn` against a fresh pebble (no state from an earlier attempt), then stops it. */
async function withPebble<T>(shared: Shared, dir: string, cert: string, key: string, certPem: string, fn: (directoryUrl: string, pid: number) => Promise<T>): Promise<T> {
  const port = await freePort();
  const config = path.join(dir, "pebble-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${await freePort()}`,
        certificate: cert,
        privateKey: key,
        httpPort: shared.responder.port,
        tlsPort: await freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const server = start("pebble", ["-config", config, "-dnsserver", shared.dns.address, "-strict=false"], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0", PEBBLE_VA_ALWAYS_VALID: "0" },
    // it logs several lines per order; reading them would tax the load generator's process
    stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    const directoryUrl = `https://127.0.0.1:${port}/dir`;
    await waitForHttps(directoryUrl, certPem, { timeoutMs: 30_000, alive: () => server.child.exitCode === null });
    return await fn(directoryUrl, server.child.pid!);
  } finally {
    await server.stop();
  }
}

const group: Group = async (ctx) => {
  const shared: Shared = { dns: await TestDnsServer.start(), responder: await Http01Responder.start() };
  try {
    const results: Result[] = [];
    // BENCH_ACME_SERVERS=ours (or pebble) measures one of them, e.g. while profiling it
    const servers = (process.env.BENCH_ACME_SERVERS ?? "ours,pebble").split(",");
    if (servers.includes("ours")) results.push(await attempt("ours.acme.orders", "ACME orders, ours", ctx.log, () => ours(ctx, shared)));
    if (servers.includes("pebble")) results.push(await attempt("peer.pebble.orders", "ACME orders, pebble", ctx.log, () => pebble(ctx, shared)));
    return results;
  } finally {
    await shared.responder.close();
    await shared.dns.close();
  }
};
export default group;
