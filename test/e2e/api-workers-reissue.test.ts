// The re-issue after an emergency revocation of an intermediate, with the issuing API on
// two node:cluster workers (`apps/api`, PKI_API_WORKERS=2, on PostgreSQL): its progress is
// kept in the inventory, so whichever worker a poll lands on answers it, and two revokes
// with reissue landing on different workers at once start one run, not two.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callApi } from "../support/api.ts";
import { freshDatabase } from "../support/harness.ts";
import { childEnv } from "../support/settings.ts";
import { freePort, opensslCsr, pki, run, spawnApp, stopSpawnedApps } from "../support/tools.ts";

/** Enough that the re-issue is still running when the second revoke arrives, and polls see it move. */
const FLEET = 120;

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dataDir: string;
let api: ChildProcessWithoutNullStreams;
let output = "";
let opsPort: number;
let apiUrl: string;
let rootPem: string;
let provisionerToken: string;
let adminToken: string;

const workerPids = () =>
  run("ps", ["--ppid", String(api.pid), "-o", "pid=,args="])
    .stdout.split("\n")
    .filter((line) => line.includes("apps/api/src/worker.ts"))
    .map((line) => Number.parseInt(line.trim(), 10));

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// callApi opens a fresh connection per request (agent: false), so the primary hands
// successive requests to the workers in turn.
const call = (method: string, urlPath: string, body?: unknown) => callApi(apiUrl, rootPem, method, urlPath, { token: adminToken, ...(body === undefined ? {} : { body }) });

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "pki-workers-reissue-"));
  opsPort = await freePort();
  const apiPort = await freePort();
  const env = {
    PKI_DATA_DIR: dataDir,
    PKI_LOG_LEVEL: "warn",
    PKI_BIND: "127.0.0.1",
    DATABASE_URL: db.url,
    PKI_HTTP_PORT: String(opsPort),
    PKI_API_PORT: String(apiPort),
    PKI_API_WORKERS: "2",
  };
  const init = pki(["init"], env);
  expect(init.status, init.stderr).toBe(0);
  const added = pki(["provisioner", "add", "fleet", "--names", "DNS:.fleet.example"], env);
  expect(added.status, added.stderr).toBe(0);
  provisionerToken = added.stdout.trim();
  const operator = pki(["admin", "add", "responder"], env);
  expect(operator.status, operator.stderr).toBe(0);
  adminToken = operator.stdout.trim();
  rootPem = readFileSync(path.join(dataDir, "root.pem"), "utf8");
  apiUrl = `https://127.0.0.1:${apiPort}`;
  api = spawnApp("apps/api/src/main.ts", { env: childEnv(env) });
  api.stdout.on("data", (d) => (output += d));
  api.stderr.on("data", (d) => (output += d));
  await until("the API to be ready", async () => {
    if (api.exitCode !== null) throw new Error(`the API exited:\n${output}`);
    return fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.status === 200 || undefined,
      () => undefined,
    );
  });
  await until("two workers", () => (workerPids().length === 2 ? true : undefined));
  // One CSR, many certificates: re-issue keeps each certificate's key, so they need not differ.
  const csr = opensslCsr({ sans: ["DNS:svc.fleet.example"] }).csrPem;
  for (let batch = 0; batch < FLEET / 12; batch++) {
    const answers = await Promise.all(Array.from({ length: 12 }, () => callApi(apiUrl, rootPem, "POST", "/v1/certificates", { token: provisionerToken, body: { csr, ttlSeconds: 86_400 } })));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
  }
}, 300_000);

afterAll(async () => {
  stopSpawnedApps();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("re-issue after revoking an intermediate, PKI_API_WORKERS=2", () => {
  it("starts one run for two concurrent revokes, and every worker reports its progress until done", async () => {
    const issuers = (await call("GET", "/v1/issuers")).json as { id: string; role: string; status: string; liveCertificates: number }[];
    const compromised = issuers.find((i) => i.role === "intermediate" && i.status === "active")!;
    expect(compromised.liveCertificates).toBe(FLEET);
    expect((await call("GET", `/v1/issuers/${compromised.id}/reissue`)).status).toBe(404);

    // Two connections at once: the workers take one each.
    const revokes = await Promise.all([0, 1].map(() => call("POST", `/v1/issuers/${compromised.id}/revoke`, { reason: "keyCompromise", reissue: true })));
    expect(revokes.map((r) => r.status).sort(), revokes.map((r) => r.text).join("\n")).toEqual([202, 409]);
    const started = revokes.find((r) => r.status === 202)!;
    expect(started.json).toMatchObject({ revoked: compromised.id, affected: FLEET, replacement: expect.any(String) });
    const refused = revokes.find((r) => r.status === 409)!;
    expect(refused.json.detail).toMatch(/being re-issued right now/);

    const seen: { status: number; reissued: number; done: boolean; stalled: boolean }[] = [];
    let last: Record<string, unknown> = {};
    while (!last.done) {
      const poll = await call("GET", `/v1/issuers/${compromised.id}/reissue`);
      expect(poll.status, poll.text).toBe(200);
      last = poll.json;
      seen.push({ status: poll.status, reissued: poll.json.reissued, done: poll.json.done, stalled: poll.json.stalled });
      expect(seen.length, "still polling after 3000 answers").toBeLessThan(3000);
      await new Promise((r) => setTimeout(r, 50));
    }
    const reissuedSeen = seen.map((s) => s.reissued);
    expect(reissuedSeen, "reissued went backwards between polls").toEqual([...reissuedSeen].sort((a, b) => a - b));
    expect(seen.every((s) => !s.stalled)).toBe(true);
    expect(last).toMatchObject({ total: FLEET, reissued: FLEET, failedCount: 0, failed: [], done: true, stalled: false, error: null, actor: "admin:responder" });

    // Every certificate has its successor from the replacement, each re-issued once.
    const after = (await call("GET", "/v1/issuers")).json as { id: string; liveCertificates: number }[];
    expect(after.find((i) => i.id === started.json.replacement)!.liveCertificates).toBe(FLEET);
    const audit = await call("GET", `/v1/audit?actor=admin:responder&action=issuer.revoke`);
    expect(audit.json.items).toHaveLength(1);

    // Once done, a new revoke with reissue starts a new run (nothing is left to re-issue).
    const again = await call("POST", `/v1/issuers/${compromised.id}/revoke`, { reissue: true });
    expect(again.status, again.text).toBe(202);
    expect(again.json.affected).toBe(0);
    const rerun = await until("the second run to finish", async () => {
      const poll = await call("GET", `/v1/issuers/${compromised.id}/reissue`);
      return poll.json.done ? poll.json : undefined;
    });
    expect(rerun).toMatchObject({ total: 0, reissued: 0, done: true });
  });
});
