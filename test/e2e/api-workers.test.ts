// The issuing API on several cores: `apps/api` with PKI_API_WORKERS=2 on PostgreSQL, as a
// real process tree (a primary and two node:cluster workers sharing the port).
import { readFileSync, readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callApi } from "../support/api.ts";
import { type ApiOnWorkers, startApiOnWorkers } from "../support/api-workers.ts";
import { opensslCsr, pki, run } from "../support/tools.ts";

const AUTH_FAILURE_LIMIT = 5;

let t: ApiOnWorkers;
let token: string;

const workerPids = () => t.workerPids();
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) => t.until(what, probe, 60_000);
const alive = (pid: number) => run("kill", ["-0", String(pid)]).status === 0;

const issue = (host: string) => callApi(t.apiUrl, t.rootPem, "POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: [`DNS:${host}`] }).csrPem, ttlSeconds: 3600 } });

/** The summed value of a metric's series whose labels include all of `labels`. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.opsPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

beforeAll(async () => {
  t = await startApiOnWorkers({ PKI_API_AUTH_FAILURE_LIMIT: String(AUTH_FAILURE_LIMIT), PKI_API_WORKER_NICE: "3" });
  const added = pki(["provisioner", "add", "fleet", "--names", "DNS:.fleet.example"], t.env);
  expect(added.status, added.stderr).toBe(0);
  token = added.stdout.trim();
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe("PKI_API_WORKERS=2", () => {
  it("serves the port from two worker processes, one listener certificate between them, with metrics summed across them", async () => {
    // ready with the first worker; the second joins it in the background
    await until("two workers", () => (workerPids().length === 2 ? true : undefined));
    expect(t.output()).toMatch(/2 workers/);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => issue(`svc-${i}.fleet.example`)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
    expect(await metric("pki_api_operations_total", { operation: "issueCertificate", outcome: "ok" })).toBe(12);
    // The second worker loaded the first one's listener certificate instead of issuing its own.
    const listed = pki(["certs", "list", "--profile", "server", "--json"], t.env);
    expect(listed.status, listed.stderr).toBe(0);
    const listeners = listed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { requester?: string })
      .filter((row) => row.requester === "api:listener");
    expect(listeners).toHaveLength(1);
  });

  it("runs every thread of every worker at PKI_API_WORKER_NICE, and the primary at its own", async () => {
    // field 19 of /proc/<pid>/task/<tid>/stat, counted after the command name's closing parenthesis
    const niceOf = (stat: string) => Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
    const threadNices = (pid: number) => readdirSync(`/proc/${pid}/task`).map((tid) => niceOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")));
    for (const pid of workerPids()) {
      const nices = threadNices(pid);
      expect(nices.length, `worker ${pid} threads`).toBeGreaterThan(4);
      expect(new Set(nices), `worker ${pid}`).toEqual(new Set([3]));
    }
    expect(new Set(threadNices(t.primary.pid!))).toEqual(new Set([0]));
  });

  it("counts failed authentications once for every worker: the limit holds whichever worker answers", async () => {
    const statuses: number[] = [];
    // Each request on its own connection, so the primary hands them to the workers in turn.
    for (let i = 0; i < AUTH_FAILURE_LIMIT + 3; i++) statuses.push((await callApi(t.apiUrl, t.rootPem, "GET", "/v1/certificates", { token: "pkp_not-a-real-token-at-all-0000000000000000" })).status);
    expect(statuses).toEqual([...Array(AUTH_FAILURE_LIMIT).fill(401), 429, 429, 429]);
    // Past the limit the primary paces the checks for both workers: of a burst spread over
    // them, only those whose turn is within 10 s reach a check (2 s apart by now: at most 6).
    const rejectedBefore = await metric("pki_api_credential_checks_total", { outcome: "rejected" });
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => callApi(t.apiUrl, t.rootPem, "GET", "/v1/certificates", { token: `pkp_guess-${i}-0000000000000000000000000000` })));
    expect(burst.map((r) => r.status)).toEqual(Array(40).fill(429));
    const checked = (await metric("pki_api_credential_checks_total", { outcome: "rejected" })) - rejectedBefore;
    expect(checked).toBeLessThanOrEqual(10);
    expect(await metric("pki_api_credential_checks_total", { outcome: "unchecked" })).toBeGreaterThanOrEqual(40 - checked);
  }, 60_000);

  it("keeps serving when a worker is killed, and replaces it", async () => {
    const [victim, survivor] = workerPids() as [number, number];
    process.kill(victim, "SIGKILL");
    await until("the killed worker to be gone", () => (alive(victim) ? undefined : true));
    const during = await Promise.all(Array.from({ length: 4 }, (_, i) => issue(`during-${i}.fleet.example`)));
    expect(during.map((a) => a.status)).toEqual([201, 201, 201, 201]);
    const replaced = await until("a replacement worker", () => {
      const pids = workerPids();
      return pids.length === 2 && !pids.includes(victim) ? pids : undefined;
    });
    expect(replaced).toContain(survivor);
    const after = await Promise.all(Array.from({ length: 4 }, (_, i) => issue(`after-${i}.fleet.example`)));
    expect(after.map((a) => a.status)).toEqual([201, 201, 201, 201]);
  });

  it("stops every worker on SIGTERM", async () => {
    const pids = workerPids();
    expect(pids).toHaveLength(2);
    const exited = new Promise<number | null>((resolve) => t.primary.once("exit", (code) => resolve(code)));
    t.primary.kill("SIGTERM");
    expect(await exited).toBe(0);
    for (const pid of pids) expect(alive(pid), `worker ${pid} outlived its primary`).toBe(false);
  });
});
