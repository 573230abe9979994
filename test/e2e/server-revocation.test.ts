// The all-in-one server (`npm start`) as relying parties and monitoring see it: a revoke
// answered by the API is already "revoked" on OCSP, the root answers OCSP about its
// intermediate, and /metrics names no certificate.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Inventory } from "@pki/db";
import { testEnv, REPO_ROOT, type TestEnv } from "../support/harness.ts";
import { callApi } from "../support/api.ts";
import { runAsync } from "../support/revocation.ts";
import { freePort, opensslCsr, npmStartArgs, run } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

let env: TestEnv;
let server: ChildProcess | undefined;
let output = "";
let publicUrl = "";
let apiUrl = "";
let rootPem = "";
let adminToken = "";

let serverEnv: Record<string, string> = {};

/** Starts `npm start`'s server and resolves once its issuing API listens. */
async function startServer(extraEnv: Record<string, string> = {}): Promise<void> {
  output = "";
  server = spawn(process.execPath, npmStartArgs(), {
    cwd: REPO_ROOT,
    env: childEnv({ ...serverEnv, ...extraEnv }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout!.on("data", (d) => (output += d));
  server.stderr!.on("data", (d) => (output += d));
  const deadline = Date.now() + 90_000;
  while (!output.includes("issuing API:")) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  env = await testEnv();
  const httpPort = await freePort();
  const apiPort = await freePort();
  publicUrl = `http://127.0.0.1:${httpPort}`;
  apiUrl = `https://127.0.0.1:${apiPort}`;
  // reconcile-intents every 2 s (6-field cron) so the test sees the server's scheduler close an intent.
  // Two API workers whatever the machine's core count: revocations made in a worker must reach
  // this process's OCSP pre-signer before the revoke call answers.
  serverEnv = {
    ...env.env,
    PKI_HTTP_PORT: String(httpPort),
    PKI_API_PORT: String(apiPort),
    PKI_PUBLIC_URL: publicUrl,
    PKI_SCHEDULE_RECONCILE_INTENTS: "*/2 * * * * *",
    PKI_API_WORKERS: "2",
  };
  await startServer();
  rootPem = readFileSync(path.join(env.dataDir, "root.pem"), "utf8");
  adminToken = readFileSync(path.join(env.dataDir, "admin.token"), "utf8").trim();
});
afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await once(server, "exit");
  }
  await env?.cleanup();
});

const call = (method: string, urlPath: string, body?: unknown) => callApi(apiUrl, rootPem, method, urlPath, { token: adminToken, ...(body === undefined ? {} : { body }) });

async function issue(commonName: string): Promise<{ serial: string; certPath: string; intermediatePath: string }> {
  const csr = opensslCsr({ subject: `/CN=${commonName}`, sans: [`DNS:${commonName}`] });
  const issued = await call("POST", "/v1/certificates", { csr: csr.csrPem, profile: "mtls" });
  expect(issued.status, issued.text).toBe(201);
  const certPath = path.join(env.dataDir, `${issued.json.serial}.pem`);
  writeFileSync(certPath, issued.json.certificate);
  const intermediatePath = path.join(env.dataDir, "intermediate-of-test.pem");
  writeFileSync(intermediatePath, issued.json.chain[0]);
  return { serial: issued.json.serial, certPath, intermediatePath };
}

const ocsp = (issuerPath: string, certPath: string) =>
  runAsync("openssl", ["ocsp", "-issuer", issuerPath, "-cert", certPath, "-url", `${publicUrl}/ocsp`, "-CAfile", path.join(env.dataDir, "root.pem"), "-no_nonce"]);

describe("all-in-one server", () => {
  it("answers revoked on OCSP as soon as the revoke call has returned, with no wait in between", async () => {
    for (let i = 0; i < 3; i++) {
      const leaf = await issue(`revoked-${i}.server.example`);
      const before = await ocsp(leaf.intermediatePath, leaf.certPath);
      expect(before.stdout + before.stderr).toMatch(/Response verify OK/);
      expect(before.stdout).toMatch(/: good/);
      const revoked = await call("POST", `/v1/certificates/${leaf.serial}/revoke`, { reason: "keyCompromise" });
      expect(revoked.status, revoked.text).toBe(200);
      const after = await ocsp(leaf.intermediatePath, leaf.certPath);
      expect(after.stdout + after.stderr).toMatch(/Response verify OK/);
      expect(after.stdout).toMatch(/: revoked/);
    }
  });

  it("runs its API workers from the bundle npm start compiled, with plain Node (no tsx)", async () => {
    const workerCommands = () =>
      run("ps", ["--ppid", String(server!.pid), "-o", "pid="])
        .stdout.split("\n")
        .filter((line) => line.trim())
        .map((pid) => readFileSync(`/proc/${pid.trim()}/cmdline`, "utf8").split("\0").filter(Boolean))
        .filter((command) => command.at(-1)?.endsWith("api-worker.js"));
    const deadline = Date.now() + 60_000;
    while (workerCommands().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const commands = workerCommands();
    expect(commands, output).toHaveLength(2);
    for (const command of commands) {
      expect(command.at(-1)).toMatch(/\/node_modules\/\.cache\/pki-server\/[0-9a-f]{16}\/api-worker\.js$/);
      expect(command.join(" ")).not.toMatch(/tsx/);
    }
  });

  it("answers good about its intermediate, signed by the root at init", async () => {
    const leaf = await issue("chain.server.example");
    const out = await ocsp(path.join(env.dataDir, "root.pem"), leaf.intermediatePath);
    expect(out.stdout + out.stderr).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/: good/);
  });

  it("/metrics names no certificate", async () => {
    const leaf = await issue("metrics.server.example");
    const metrics = await (await fetch(`${publicUrl}/metrics`)).text();
    expect(metrics).toMatch(/pki_leaf_soonest_expiry_seconds\{rank="1"\} \d/);
    expect(metrics.toLowerCase()).not.toContain(leaf.serial.toLowerCase());
    expect(metrics).not.toMatch(/serial=/);
    // Nothing hex-like as long as a serial (17 octets) appears in any label.
    expect(metrics).not.toMatch(/="[0-9a-f]{30,}"/i);
  });

  it("closes an intent a crash left pending through its scheduler, and exports the clock skew", async () => {
    const leaf = await issue("interrupted.server.example");
    const inventory = await Inventory.open({ url: env.env.DATABASE_URL!, embeddedDir: "" });
    try {
      // what a crash between "record" and "store" leaves: a pending row with no DER, minutes old
      await inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL, created_at = now() - interval '10 minutes' WHERE serial = $1", [leaf.serial]);
      const deadline = Date.now() + 60_000;
      while ((await inventory.certificates.get(leaf.serial))?.status === "pending" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect((await inventory.certificates.get(leaf.serial))?.status).toBe("failed");
      expect((await inventory.audit.recent(5, leaf.serial)).map((e) => e.action)).toContain("certificate.reconcile");
      // The job records its run once it has finished, a moment after the row changed.
      const closedByRun = async () => (await inventory.scheduler.runs("reconcile-intents", 100)).some((r) => r.counts?.closed === 1);
      while (!(await closedByRun()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await closedByRun()).toBe(true);
    } finally {
      await inventory.close();
    }
    const metrics = await (await fetch(`${publicUrl}/metrics`)).text();
    expect(metrics).toMatch(/^pki_reconciled_intents_total 1$/m);
    expect(metrics).toMatch(/^pki_scheduler_job_runs_total\{job="clock-check",outcome="ok"\} [1-9]/m);
    expect(Math.abs(Number(metrics.match(/^pki_clock_skew_seconds (\S+)$/m)?.[1]))).toBeLessThan(5);
  });

  it("with its scheduler turned off, closes stale intents once at start-up", async () => {
    const leaf = await issue("before-restart.server.example");
    server!.kill("SIGTERM");
    await once(server!, "exit");
    const inventory = await Inventory.open({ url: env.env.DATABASE_URL!, embeddedDir: "" });
    try {
      await inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL, created_at = now() - interval '10 minutes' WHERE serial = $1", [leaf.serial]);
      const runsBefore = (await inventory.scheduler.runs(undefined, 10_000)).length;
      await startServer({ PKI_SCHEDULER_ENABLED: "false" });
      // closed before the listeners opened, by the server itself: no scheduler job ran
      expect((await inventory.certificates.get(leaf.serial))?.status).toBe("failed");
      expect(await inventory.scheduler.runs(undefined, 10_000)).toHaveLength(runsBefore);
    } finally {
      await inventory.close();
    }
  });
});
