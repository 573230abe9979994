// `npm run bench [-- --quick] [-- --only=group,group]`: runs every benchmark group, each in
// its own process with a hard time limit, then prints the table (one row per figure, with
// the ratio to a reference measured in this same run), writes bench/results/latest.json
// and regenerates BENCHMARKS.md at the repository root.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { rows, formatValue, type Row } from "./figures.ts";
import type { Result } from "./lib/types.ts";
import { run as runCmd } from "./lib/proc.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");

/** Groups in run order, with their time limit (full / quick), in seconds. */
const GROUPS: Array<{ name: string; limit: [number, number] }> = [
  { name: "ceiling-sign", limit: [120, 60] },
  { name: "ceiling-http", limit: [90, 45] },
  { name: "peer-openssl-crl", limit: [180, 120] },
  { name: "peer-openssl-ocsp", limit: [90, 60] },
  { name: "peer-cfssl", limit: [300, 150] },
  { name: "ours-issue", limit: [240, 120] },
  { name: "ours-ocsp", limit: [480, 240] },
  { name: "ours-crl", limit: [420, 150] },
  { name: "ours-inventory", limit: [420, 180] },
  // 1M certificates seeded and 2M responses signed: minutes on 2 cores
  { name: "ours-fleet", limit: [1800, 300] },
  { name: "acme", limit: [300, 150] },
  { name: "footprint", limit: [420, 360] },
];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args
  .find((a) => a.startsWith("--only="))
  ?.slice(7)
  .split(",");
const selected = GROUPS.filter((g) => !only || only.includes(g.name));
if (only) for (const name of only) if (!GROUPS.some((g) => g.name === name)) throw new Error(`unknown group ${name}; groups: ${GROUPS.map((g) => g.name).join(", ")}`);
if (!process.env.PKI_TEST_DATABASE_URL && !args.includes("--report-only")) {
  console.error("PKI_TEST_DATABASE_URL is not set: run `npm run bench` (it starts PostgreSQL through scripts/with-postgres.sh)");
  process.exit(2);
}

const resultsDir = path.join(HERE, "results");
if (args.includes("--report-only")) {
  // BENCHMARKS.md again from bench/results/latest.json (e.g. after editing bench/NOTES.md)
  const saved = JSON.parse(readFileSync(path.join(resultsDir, "latest.json"), "utf8")) as Parameters<typeof markdown>[0];
  writeFileSync(path.join(ROOT, "BENCHMARKS.md"), markdown(saved));
  console.log("BENCHMARKS.md regenerated from bench/results/latest.json");
  process.exit(0);
}
// one temporary directory for the whole run (groups' scratch, wrk request files, the CSRs
// made once and shared by the groups that need them), removed at exit even after a timeout
const runTmp = mkdtempSync(path.join(os.tmpdir(), "bench-run-"));
const csrDir = path.join(runTmp, "csrs");
mkdirSync(csrDir);
process.on("exit", () => rmSync(runTmp, { recursive: true, force: true }));
mkdirSync(resultsDir, { recursive: true });
const started = new Date();
const t0 = performance.now();
const all: Result[] = [];
const groupLog: Array<{ group: string; seconds: number; exit: number | string }> = [];

/** the running group's process group, killed whole if this runner is interrupted */
let current: number | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (current) {
      try {
        process.kill(-current, "SIGKILL");
      } catch {}
    }
    process.exit(130);
  });
}

async function runGroup(name: string, limitSeconds: number): Promise<void> {
  const out = path.join(resultsDir, `.group-${name}.json`);
  const g0 = performance.now();
  console.error(`▶ ${name} (limit ${limitSeconds} s)`);
  const child = spawn(process.execPath, ["--import", "tsx", path.join(HERE, "child.ts"), name, out], {
    cwd: ROOT,
    env: { ...process.env, BENCH_QUICK: quick ? "1" : "0", BENCH_CSR_DIR: csrDir, BENCH_TMP: runTmp },
    stdio: ["ignore", "inherit", "inherit"],
    detached: true, // its own process group, so a timeout takes its children too
  });
  current = child.pid;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {}
  }, limitSeconds * 1000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  current = undefined;
  const seconds = (performance.now() - g0) / 1000;
  groupLog.push({ group: name, seconds: Math.round(seconds), exit: timedOut ? "timeout" : (code ?? "signal") });
  if (existsSync(out) && !timedOut) {
    all.push(...(JSON.parse(readFileSync(out, "utf8")) as Result[]));
  } else {
    all.push({ id: `${name}.error`, label: name, unavailable: timedOut ? `group exceeded its ${limitSeconds} s limit` : `group exited ${code} without results` });
  }
  console.error(`  ${name}: ${seconds.toFixed(0)} s${timedOut ? " (TIMED OUT)" : ""}`);
}

for (const g of selected) await runGroup(g.name, quick ? g.limit[1] : g.limit[0]);
// Measurements a group could not take name the figure ids they cover.
const table = rows(all.map((r) => r));
const groupErrors = all.filter((r) => r.id.endsWith(".error"));
/** which group measures a figure, so a failed group's reason reaches its rows */
const OWNERS: Array<[string, string]> = [
  ["ceiling.sign", "ceiling-sign"],
  ["ceiling.http.ocsp", "ours-ocsp"],
  ["ceiling.http", "ceiling-http"],
  ["peer.openssl.crl", "peer-openssl-crl"],
  ["peer.openssl.ocsp", "peer-openssl-ocsp"],
  ["peer.cfssl", "peer-cfssl"],
  ["ours.issue", "ours-issue"],
  ["ours.ocsp", "ours-ocsp"],
  ["ours.revoke", "ours-ocsp"],
  ["ours.crl", "ours-crl"],
  ["ours.inventory", "ours-inventory"],
  ["ours.fleet", "ours-fleet"],
  ["ours.coldstart", "ours-inventory"],
  ["ours.firststart", "ours-inventory"],
  ["ours.acme", "acme"],
  ["peer.pebble", "acme"],
  ["ours.footprint", "footprint"],
];
for (const row of table) {
  if (!row.unavailable?.startsWith("not measured")) continue;
  const owner = OWNERS.find(([prefix]) => row.id.startsWith(prefix))?.[1];
  const err = owner && groupErrors.find((e) => e.id === `${owner}.error`);
  if (err && "unavailable" in err) row.unavailable = err.unavailable;
  else if (owner && !selected.some((g) => g.name === owner)) row.unavailable = `group ${owner} was not run (--only)`;
}

const machine = machineFacts();
const totalSeconds = (performance.now() - t0) / 1000;
const report = { started: started.toISOString(), mode: quick ? "quick" : "full", totalSeconds: Math.round(totalSeconds), machine, groups: groupLog, rows: table, measurements: all };
// A partial run (--only) never replaces the complete run that BENCHMARKS.md is made from.
const resultsFile = only ? "only.json" : "latest.json";
writeFileSync(path.join(resultsDir, resultsFile), JSON.stringify(report, null, 2));
printTable(table);
console.log(`\n${quick ? "quick" : "full"} run, ${totalSeconds.toFixed(0)} s; JSON: bench/results/${resultsFile}`);
if (!only) {
  writeFileSync(path.join(ROOT, "BENCHMARKS.md"), markdown(report));
  console.log("BENCHMARKS.md regenerated");
} else {
  console.log("(--only: BENCHMARKS.md left as it was)");
}

function printTable(table: Row[]): void {
  const lines = table.map((r) => [r.kind, r.name, formatValue(r), r.unavailable ? `not available: ${r.unavailable}` : r.reference, r.target, r.met === null ? "" : r.met ? "met" : "NOT met"]);
  const header = ["kind", "figure", "value", "reference (same run)", "target", ""];
  const widths = header.map((h, i) => Math.min(i === 3 ? 90 : 60, Math.max(h.length, ...lines.map((l) => l[i]!.length))));
  const cell = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w));
  console.log(`\n${header.map((h, i) => cell(h, widths[i]!)).join(" | ")}`);
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const l of lines) console.log(l.map((c, i) => cell(c, widths[i]!)).join(" | "));
}

function machineFacts() {
  const cpus = os.cpus();
  const version = (cmd: string, a: string[]) => {
    try {
      return runCmd(cmd, a, { timeoutMs: 10_000, allowFail: true }).stdout.split("\n")[0]!.trim();
    } catch {
      return "absent";
    }
  };
  const dpkg = (pkg: string) => version("dpkg-query", ["-W", "-f=${Version}", pkg]);
  let osName = "";
  try {
    osName = /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {}
  const git = (a: string[]) => {
    try {
      return runCmd("git", a, { cwd: ROOT, timeoutMs: 10_000, allowFail: true }).stdout.trim();
    } catch {
      return "";
    }
  };
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]).split("\n").filter(Boolean).length;
  return {
    code: `${git(["rev-parse", "--short", "HEAD"])}${dirty ? ` with ${dirty} uncommitted changed files in the tree (others' work in progress is measured as it stood)` : ""}`,
    os: osName,
    kernel: os.release(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "",
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))),
    node: process.version,
    openssl: version("openssl", ["version"]),
    softhsm2: dpkg("softhsm2"),
    postgresql: version(path.join(process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin", "postgres"), ["--version"]),
    cfssl: dpkg("golang-cfssl"),
    wrk: dpkg("wrk"),
    pebble: dpkg("pebble"),
  };
}

function markdown(r: typeof report): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const lines: string[] = [];
  lines.push("# Benchmarks", "");
  lines.push(
    "Generated by `npm run bench`. Every row was measured in the same run as its references, on the machine described below; the machine is shared and noisy (other work runs on it), so read the ratios first and the absolute numbers second. A row whose code is not in the tree yet, or that failed, says `not available` and why.",
    "",
  );
  lines.push(`Last run: ${r.started} (${r.mode} mode, ${r.totalSeconds} s).`, "");
  lines.push("| kind | figure | value | reference, measured in the same run | target | met | issue's 2-core figure | notes |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of r.rows) {
    const met = row.met === null ? "" : row.met ? "yes" : "**no**";
    const ref = row.unavailable ? `not available: ${row.unavailable}` : row.reference;
    lines.push(`| ${row.kind} | ${esc(row.name)} | ${formatValue(row)} | ${esc(ref)} | ${esc(row.target)} | ${met} | ${esc(row.issueFigure ?? "")} | ${esc(row.note ?? "")} |`);
  }
  lines.push("", "## How to reproduce", "");
  lines.push(
    "```sh",
    "npm install",
    "npm run bench             # everything, about 11 minutes on 2 cores",
    "npm run bench -- --quick  # shorter phases and smaller data sets, about 3-5 minutes",
    "npm run bench -- --only=peer-cfssl,ours-ocsp   # some groups; BENCHMARKS.md is left alone",
    "node --import tsx bench/run.ts --report-only   # BENCHMARKS.md again from bench/results/latest.json (after editing bench/NOTES.md)",
    "```",
    "",
    "`bench/setup.sh` installs the peers and tools from Debian (golang-cfssl, pebble, wrk, apache2-utils for ab, softhsm2, postgresql, openssl, time) when they are missing. `scripts/with-postgres.sh` starts a throwaway PostgreSQL 15 on 127.0.0.1 (fsync and synchronous_commit off, for every contender alike); each group makes its own databases on it, its own SoftHSM token in a temporary directory, starts what it measures, warms up, measures for a fixed time with wrk (1 thread, 32 connections, loopback only, bounded by time and response count) and stops everything. Results: `bench/results/latest.json` (every raw measurement with latencies, error counts and settings; a run with `--only` writes `bench/results/only.json` instead).",
    "",
    `Groups, each in its own process with a hard time limit: ${GROUPS.map((g) => `\`${g.name}\``).join(", ")}. What each measures is documented at the top of \`bench/groups/<group>.ts\`.`,
    "",
  );
  const notes = path.join(HERE, "NOTES.md");
  if (existsSync(notes)) lines.push(readFileSync(notes, "utf8").trim(), "");
  lines.push("## Machine", "");
  for (const [k, v] of Object.entries(r.machine)) lines.push(`- ${k}: ${Array.isArray(v) ? v.join(", ") : v}`);
  lines.push("", "## Group timings", "");
  for (const g of r.groups) lines.push(`- ${g.group}: ${g.seconds} s (exit ${g.exit})`);
  lines.push("");
  return lines.join("\n");
}
