// The production shape, without Docker: every role of docker-compose.yml started as its
// own process with the environment the compose file gives it (secrets as files, the
// ceremony as a one-shot init), against a real PostgreSQL, each with its own database user
// holding only the grants prisma/roles.sql gives it (the migrate step sets them). Then a certificate goes
// through them all: issued by the API, answered by the separate OCSP responder, revoked,
// seen revoked by the responder and on the publisher's CRL; Prometheus scrapes each role.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, freshDatabase } from "../support/harness.ts";
import { createRoleUsers } from "../support/databases.ts";
import { buildDist, freePort, imageCommand, opensslCsr, run, scratchDir, writeTemp } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

interface Service {
  command?: string[];
  environment?: Record<string, string>;
}

const compose = parse(readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, Service> };
const ROLES = ["api", "ocsp-responder", "crl-publisher", "scheduler"] as const;

let dist: ReturnType<typeof buildDist>;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let dataDir: string;
let secrets: string;
const ports: Record<string, number> = {};
const children: Array<{ role: string; child: ChildProcess; output: () => string }> = [];
let apiPort: number;
let publicUrl: string;

/**
 * The compose environment with what only differs on one host: file paths under temp
 * dirs instead of volumes and /run/secrets, a free port per role instead of 8080 in each
 * container, and 127.0.0.1 instead of the image's 0.0.0.0.
 */
function environmentOf(service: string, httpPort: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, raw] of Object.entries(compose.services[service]!.environment ?? {})) {
    let value = String(raw).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");
    value = value.replace(/^\/run\/secrets\//, `${secrets}/`).replace(/^\/var\/lib\/pki$/, dataDir);
    env[key] = value;
  }
  return {
    ...env,
    PKI_BIND: "127.0.0.1",
    PKI_DATA_DIR: dataDir,
    PKI_HTTP_PORT: String(httpPort),
    PKI_PUBLIC_URL: publicUrl,
    PKI_API_PORT: String(apiPort),
    PKI_LOG_LEVEL: "warn",
    PKI_CRL_DEBOUNCE_MS: "200",
  };
}

function start(role: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, imageCommand(compose.services[role]!.command!, dist.dir), { cwd: REPO_ROOT, env: { PATH: childEnv().PATH!, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  children.push({ role, child, output: () => output });
  return child;
}

async function waitReady(role: string, port: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    const entry = children.find((c) => c.role === role)!;
    if (entry.child.exitCode !== null || Date.now() > deadline) throw new Error(`${role} is not ready:\n${entry.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const token = readFileSync(path.join(secrets, "admin_token"), "utf8").trim();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: apiPort,
        path: urlPath,
        method,
        ca: readFileSync(path.join(dataDir, "root.pem")),
        servername: "localhost",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text || "{}") }));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

beforeAll(async () => {
  dist = buildDist();
  db = await freshDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "pki-roles-"));
  secrets = path.join(dataDir, "secrets");
  mkdirSync(secrets, { mode: 0o700 });
  for (const [role, url] of Object.entries(createRoleUsers(db.url, secrets))) writeFileSync(path.join(secrets, `database_url_${role}`), `${url}\n`, { mode: 0o600 });
  for (const secret of ["issuing_pin", "root_pin", "admin_token"]) writeFileSync(path.join(secrets, secret), `${secret}-${Math.random().toString(36).slice(2)}-value\n`, { mode: 0o600 });
  apiPort = await freePort();
  for (const role of ROLES) ports[role] = await freePort();
  publicUrl = `http://127.0.0.1:${ports["crl-publisher"]}`;

  // Schema and grants first, as the owner; then the ceremony; the roles never migrate.
  for (const oneShot of ["migrate", "init"]) {
    const child = start(oneShot, environmentOf(oneShot, await freePort()));
    const [code] = await once(child, "exit");
    expect(code, children.at(-1)!.output()).toBe(0);
  }
  // The publisher signs the first CRLs and OCSP answers; the others read them from the database.
  start("crl-publisher", environmentOf("crl-publisher", ports["crl-publisher"]!));
  await waitReady("crl-publisher", ports["crl-publisher"]!);
  for (const role of ["api", "ocsp-responder", "scheduler"]) start(role, environmentOf(role, ports[role]!));
  await Promise.all(["api", "ocsp-responder", "scheduler"].map((role) => waitReady(role, ports[role]!)));
});

afterAll(async () => {
  for (const { child } of children) if (child.exitCode === null) child.kill("SIGKILL");
  await db?.drop();
  dist?.remove();
});

describe("per-role processes from docker-compose.yml", () => {
  it("issue, OCSP, revoke, CRL and metrics across separate processes", async () => {
    // The OCSP responder holds no PIN: compose gives it none.
    const responderEnv = environmentOf("ocsp-responder", 1);
    expect(Object.keys(responderEnv).filter((k) => /PIN/.test(k))).toEqual([]);

    const csr = opensslCsr({ subject: "/CN=roles.example.com" });
    const issued = await api("POST", "/v1/certificates", { csr: csr.csrPem, profile: "mtls", ttlSeconds: 3600 });
    expect(issued.status, JSON.stringify(issued.json)).toBe(201);
    const serial = issued.json.serial as string;
    const dir = scratchDir();
    const certFile = writeTemp("cert.pem", issued.json.certificate as string, dir);
    const issuerFile = writeTemp("issuer.pem", (issued.json.chain as string[])[0]!, dir);
    const chainFile = writeTemp("chain.pem", (issued.json.chain as string[]).join(""), dir);
    const ocsp = () => run("openssl", ["ocsp", "-issuer", issuerFile, "-cert", certFile, "-url", `http://127.0.0.1:${ports["ocsp-responder"]}/ocsp`, "-CAfile", chainFile]);

    // Answered by the separate, keyless responder from the moment it was issued.
    let answer = ocsp();
    for (let i = 0; i < 20 && !/: good/.test(answer.stdout); i++) {
      await new Promise((r) => setTimeout(r, 250));
      answer = ocsp();
    }
    expect(answer.stdout).toMatch(/: good/);
    expect(answer.stderr).toMatch(/Response verify OK/);

    const revoked = await api("POST", `/v1/certificates/${serial}/revoke`, { reason: "keyCompromise" });
    expect(revoked.status).toBe(200);
    for (let i = 0; i < 40 && !/: revoked/.test(answer.stdout); i++) {
      await new Promise((r) => setTimeout(r, 250));
      answer = ocsp();
    }
    expect(answer.stdout).toMatch(/: revoked/);
    expect(answer.stdout).toMatch(/Reason: keyCompromise/);

    const issuerId = issued.json.issuerId as string;
    let crlText = "";
    for (let i = 0; i < 60 && !crlText.toUpperCase().includes(serial.toUpperCase()); i++) {
      const der = Buffer.from(await (await fetch(`${publicUrl}/crl/${issuerId}-delta.crl`)).arrayBuffer());
      crlText = run("openssl", ["crl", "-inform", "DER", "-noout", "-text"], { input: der }).stdout.replace(/:/g, "");
      if (!crlText.toUpperCase().includes(serial.toUpperCase())) await new Promise((r) => setTimeout(r, 500));
    }
    expect(crlText.toUpperCase()).toContain(serial.toUpperCase());

    const scrape = async (role: string) => (await fetch(`http://127.0.0.1:${ports[role]}/metrics`)).text();
    const value = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    const apiMetrics = await scrape("api");
    expect(value(apiMetrics, /pki_certificates_issued_total\{[^}]*outcome="issued"[^}]*\} (\d+)/)).toBeGreaterThanOrEqual(1);
    expect(value(apiMetrics, /pki_certificates_revoked_total\{[^}]*reason="keyCompromise"[^}]*\} (\d+)/)).toBe(1);
    expect(value(apiMetrics, /pki_token_sign_seconds_count\{[^}]*\} (\d+)/)).toBeGreaterThanOrEqual(1);
    const ocspMetrics = await scrape("ocsp-responder");
    expect(ocspMetrics).toMatch(/pki_ocsp_requests_total\{[^}]*good[^}]*\} [1-9]/);
    expect(ocspMetrics).toMatch(/pki_ocsp_requests_total\{[^}]*revoked[^}]*\} [1-9]/);
    const crlMetrics = await scrape("crl-publisher");
    expect(value(crlMetrics, new RegExp(`pki_crl_number\\{[^}]*issuer="${issuerId}"[^}]*\\} (\\d+)`))).toBeGreaterThanOrEqual(1);
    expect(crlMetrics).toMatch(/pki_crl_seconds_until_next_update\{[^}]*\} \d/);
    expect(await scrape("scheduler")).toMatch(/process_resident_memory_bytes \d/);
  });

  it("every role stops cleanly on SIGTERM", async () => {
    for (const { role, child } of children.filter((c) => c.child.exitCode === null)) {
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      expect(code, role).toBe(0);
    }
    // Each ran with its own database user: nothing it did was refused by PostgreSQL.
    for (const { role, output } of children) expect(output(), role).not.toMatch(/permission denied/i);
  });
});
