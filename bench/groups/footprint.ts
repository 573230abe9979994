// Footprint: the resident memory (RSS) of our processes once they serve and sit idle.
// Each is started on its own, waits for /readyz 200, idles, then the RSS of its whole
// process tree is summed (the process, its cluster workers, any esbuild service): what
// a host or a container's memory limit sees.
//
// - `npm start` with the embedded database, started with the start script's own node
//   arguments (read from package.json) on an empty data dir, as a newcomer runs it.
// - The same all-in-one on PostgreSQL, for comparison, once with one API worker per core
//   (PKI_API_WORKERS; its default keeps the API in its process) and once with one: the
//   one-worker run differs from the embedded run only by the database, so their difference
//   is the embedded database's share.
// - Each role on PostgreSQL as docker-compose deploys it: the bundle the image compiles
//   (apps/server/build-dist.mjs, as the Dockerfile runs it) started with plain
//   `node dist/<app>/main.js`, the image's environment, the crl-publisher's NODE_OPTIONS;
//   against a CA the bench creates.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Group, Measurement, Result } from "../lib/types.ts";
import { childEnv, createCa } from "../lib/ca.ts";
import { attempt } from "../lib/measure.ts";
import { childrenOf, freePort, start, waitForHttp } from "../lib/proc.ts";
import { REPO_ROOT, npmStartArgs } from "../lib/repo.ts";

/** The image's environment (Dockerfile), which every compose service runs with. */
const IMAGE_ENV = { NODE_ENV: "production" };
/** docker-compose.yml gives the crl-publisher service a small young generation. */
const CRL_PUBLISHER_NODE_OPTIONS = "--max-semi-space-size=2";

interface ProcessRss {
  pid: number;
  command: string;
  rssMB: number;
}

/** Every process of the tree rooted at `pid`, with its RSS (VmRSS). */
export function processTree(pid: number): ProcessRss[] {
  const out: ProcessRss[] = [];
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const kB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      const command = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ").replace(REPO_ROOT, ".").slice(0, 120);
      out.push({ pid: p, command, rssMB: kB / 1024 });
    } catch {
      return; // exited meanwhile
    }
    for (const child of childrenOf(p)) visit(child);
  };
  visit(pid);
  return out;
}

const sum = (tree: ProcessRss[]) => tree.reduce((total, p) => total + p.rssMB, 0);

/** What kind of process each tree member is, for the notes. */
function describeTree(tree: ProcessRss[]): string {
  const root = tree[0]!;
  const parts = [`main ${Math.round(root.rssMB)} MB`];
  const esbuild = tree.slice(1).filter((p) => p.command.includes("esbuild"));
  const workers = tree.slice(1).filter((p) => p.command.startsWith(process.execPath));
  const others = tree.slice(1).filter((p) => !workers.includes(p) && !esbuild.includes(p));
  if (workers.length) parts.push(`${workers.length} node child process(es) ${workers.map((p) => Math.round(p.rssMB)).join("+")} MB`);
  if (esbuild.length) parts.push(`esbuild service ${esbuild.map((p) => Math.round(p.rssMB)).join("+")} MB`);
  if (others.length) parts.push(`other ${others.map((p) => `${p.command.split(" ")[0]} ${Math.round(p.rssMB)} MB`).join(", ")}`);
  return parts.join(", ");
}

interface Measured {
  totalMB: number;
  tree: ProcessRss[];
  secondsToReady: number;
}

/**
 * Starts `args` (node arguments), waits for /readyz 200 on `httpPort`, idles, and takes the
 * median of three samples of the tree's RSS a second apart.
 */
async function idleFootprint(args: string[], env: NodeJS.ProcessEnv, httpPort: number, idleSeconds: number): Promise<Measured> {
  const t0 = performance.now();
  const server = start(process.execPath, args, { cwd: REPO_ROOT, env });
  try {
    await waitForHttp(`http://127.0.0.1:${httpPort}/readyz`, { timeoutMs: 120_000, intervalMs: 100, alive: () => server.child.exitCode === null }).catch((error: Error) => {
      throw new Error(`${error.message}; it said: ${server.output().slice(-400)}`, { cause: error });
    });
    const secondsToReady = (performance.now() - t0) / 1000;
    await sleep(idleSeconds * 1000);
    const samples: Array<{ totalMB: number; tree: ProcessRss[] }> = [];
    for (let i = 0; i < 3; i++) {
      if (i) await sleep(1000);
      const tree = processTree(server.child.pid!);
      samples.push({ totalMB: sum(tree), tree });
    }
    samples.sort((a, b) => a.totalMB - b.totalMB);
    return { ...samples[1]!, secondsToReady };
  } finally {
    await server.stop();
  }
}

function measurement(id: string, label: string, m: Measured, note: string, extra: Record<string, unknown> = {}): Measurement {
  return {
    id,
    label,
    value: Math.round(m.totalMB),
    unit: "MB",
    details: {
      processes: m.tree.map((p) => ({ ...p, rssMB: Math.round(p.rssMB * 10) / 10 })),
      secondsToReady: Math.round(m.secondsToReady * 10) / 10,
      note: `${describeTree(m.tree)}; ${note}`,
      ...extra,
    },
  };
}

const group: Group = async (ctx) => {
  const idleSeconds = 15;
  const results: Result[] = [];
  const mainArgs = npmStartArgs();
  const allInOne = mainArgs.at(-1)!;
  const workers = availableParallelism();

  // 1. npm start, embedded database, empty data dir (without DATABASE_URL or the bench's token settings)
  const embeddedEnv = async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PKI_DATA_DIR: mkdtempSync(path.join(ctx.tmp, "embedded-")),
      PKI_LOG_LEVEL: "error",
      PKI_BIND: "127.0.0.1",
      PKI_HTTP_PORT: String(port),
      PKI_API_PORT: String(await freePort()),
    };
    for (const inherited of ["DATABASE_URL", "SOFTHSM2_CONF", "PKI_BOOTSTRAP_ADMIN_TOKEN", "NODE_OPTIONS", "PKI_API_WORKERS"]) delete env[inherited];
    return { env, port };
  };
  const embedded = await attempt("ours.footprint.embedded", "npm start, embedded database", ctx.log, async () => {
    const { env, port } = await embeddedEnv();
    return idleFootprint(mainArgs, env, port, idleSeconds);
  });

  const ca = await createCa(ctx.pgUrl, ctx.tmp);
  try {
    const onPostgres = async (entry: string, extra: Record<string, string>, nodeArgs: string[] = mainArgs.slice(0, -1)) => {
      const httpPort = await freePort();
      const env = childEnv(ca, { PKI_HTTP_PORT: String(httpPort), PKI_API_PORT: String(await freePort()), ...extra });
      return idleFootprint([...nodeArgs, entry], env, httpPort, idleSeconds);
    };
    // 2. the all-in-one on PostgreSQL: one API worker per core, and one worker (the embedded run's twin)
    const pgOneWorker = await attempt("ours.footprint.allinone.pg1", "all-in-one on PostgreSQL, one API worker", ctx.log, () => onPostgres(allInOne, { PKI_API_WORKERS: "1" }));
    const pgDefault = await attempt("ours.footprint.allinone.pg", "all-in-one on PostgreSQL", ctx.log, () => onPostgres(allInOne, { PKI_API_WORKERS: String(workers) }));

    if ("unavailable" in embedded) results.push(embedded);
    else {
      const share = "unavailable" in pgOneWorker ? undefined : embedded.totalMB - pgOneWorker.totalMB;
      const shareNote =
        share === undefined
          ? "the embedded database's share is unknown (the one-worker PostgreSQL run failed)"
          : `the embedded database's share ≈ ${Math.round(share)} MB (this tree minus the same all-in-one on PostgreSQL with one API worker, ${Math.round((pgOneWorker as Measured).totalMB)} MB)`;
      results.push(
        measurement(
          "ours.footprint.embedded",
          `\`npm start\` idle RSS, embedded database, whole process tree (${idleSeconds} s after /readyz)`,
          embedded,
          `${shareNote}; node ${mainArgs.slice(0, -1).join(" ")}; npm's own process not counted`,
          {
            embeddedDatabaseShareMB: share === undefined ? null : Math.round(share),
          },
        ),
      );
    }
    results.push(
      "unavailable" in pgDefault
        ? pgDefault
        : measurement(
            "ours.footprint.allinone.pg",
            `all-in-one (npm start) idle RSS on PostgreSQL, ${workers} API workers (PKI_API_WORKERS=${workers}), whole tree`,
            pgDefault,
            "for comparison; the same node arguments as npm start",
          ),
    );

    // 3. each role as docker-compose runs it: `node dist/<app>/main.js`, the image's environment
    const roles: Array<{ id: string; name: string; app: string; env?: Record<string, string> }> = [
      { id: "api", name: `apps/api, primary + ${workers} workers (PKI_API_WORKERS default)`, app: "api" },
      { id: "ocsp", name: "apps/ocsp-responder", app: "ocsp-responder" },
      { id: "crl", name: "apps/crl-publisher", app: "crl-publisher", env: { NODE_OPTIONS: CRL_PUBLISHER_NODE_OPTIONS } },
      { id: "scheduler", name: "apps/scheduler", app: "scheduler" },
    ];
    // Inside the checkout, as /app/dist is in the image: the bundles find node_modules from there.
    mkdirSync(path.join(REPO_ROOT, ".tmp"), { recursive: true });
    const dist = mkdtempSync(path.join(REPO_ROOT, ".tmp", "footprint-dist-"));
    try {
      execFileSync(process.execPath, [path.join(REPO_ROOT, "apps/server/build-dist.mjs"), dist, ...roles.map((r) => r.app)], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
      for (const role of roles) {
        const id = `ours.footprint.role.${role.id}`;
        const r = await attempt(id, role.name, ctx.log, () => onPostgres(path.join(dist, role.app, "main.js"), { ...IMAGE_ENV, NODE_OPTIONS: "", ...role.env }, []));
        results.push(
          "unavailable" in r
            ? r
            : measurement(
                id,
                `${role.name} idle RSS on PostgreSQL, as docker-compose runs it, whole tree`,
                r,
                `node dist/${role.app}/main.js (apps/server/build-dist.mjs), ${Object.entries({ ...IMAGE_ENV, ...role.env })
                  .map(([k, v]) => `${k}=${v}`)
                  .join(" ")}`,
              ),
        );
      }
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  } finally {
    await ca.cleanup();
  }
  return results;
};
export default group;
