// Each role's PostgreSQL user may do only what its code needs (prisma/roles.sql, set by
// `pki migrate --grant-roles`). The real OCSP responder answers a real certificate with
// the read-only pki_ocsp user, and PostgreSQL itself refuses that user's writes and DDL;
// the API's user cannot change the schema, the audit history, or delete what it issued;
// the publisher's and the scheduler's cannot reach operators' credentials. A role never
// migrates: on a schema that is behind it stops with one line naming `pki migrate`.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { once } from "node:events";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import pg from "pg";
import { openAcmeValidationStore } from "@pki/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "../support/harness.ts";
import { createRoleUsers, type DatabaseRole } from "../support/databases.ts";
import { freePort, opensslCsr, pki, run, scratchDir, spawnApp, stopSpawnedApps } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

const INSUFFICIENT_PRIVILEGE = "42501";

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dataDir: string;
let urls: Record<DatabaseRole, string>;
let env: Record<string, string>;
let certPath: string;
let chainPath: string;
let issuerPath: string;
const ports: Record<string, number> = {};
const apps: Record<string, { child: ChildProcessWithoutNullStreams; output: () => string }> = {};
const clients: pg.Client[] = [];

function start(name: string, entry: string, appEnv: Record<string, string>): void {
  const child = spawnApp(entry, { env: childEnv(appEnv) });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  apps[name] = { child, output: () => output };
}

async function waitReady(name: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${ports[name]}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (apps[name]!.child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} is not ready:\n${apps[name]!.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function connectAs(role: DatabaseRole): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urls[role] });
  await client.connect();
  clients.push(client);
  return client;
}

/** The statement fails with PostgreSQL's insufficient_privilege, and nothing else. */
async function refused(client: pg.Client, sql: string): Promise<void> {
  const error = await client.query(sql).then(
    () => undefined,
    (e: { code?: string; message: string }) => e,
  );
  expect(error, `${sql} was allowed`).toBeDefined();
  expect(`${error!.code} ${error!.message}`, sql).toMatch(new RegExp(`^${INSUFFICIENT_PRIVILEGE} (permission denied|must be owner)`));
}

function ocspAnswer(): { stdout: string; stderr: string } {
  return run("openssl", ["ocsp", "-issuer", issuerPath, "-cert", certPath, "-url", `http://127.0.0.1:${ports.ocsp}/ocsp`, "-CAfile", chainPath]);
}

/** Whether the process has the PKCS#11 module (SoftHSM) mapped: loaded only to open a token. */
const hasTokenModule = (pid: number) => /softhsm/i.test(readFileSync(`/proc/${pid}/maps`, "utf8"));
/** Whether the process has the PKCS#11 binding (pkcs11js's native addon) mapped: loaded by any code that can reach a token. */
const hasPkcs11Binding = (pid: number) => /\/pkcs11js\/.*\.node$/m.test(readFileSync(`/proc/${pid}/maps`, "utf8"));

beforeAll(async () => {
  db = await freshDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "pki-least-"));
  const secrets = path.join(dataDir, "secrets");
  mkdirSync(secrets, { mode: 0o700 });
  urls = createRoleUsers(db.url, secrets);
  env = { PKI_DATA_DIR: dataDir, PKI_LOG_LEVEL: "warn", PKI_BIND: "127.0.0.1", PKI_CRL_DEBOUNCE_MS: "200" };
  ports.crl = await freePort();
  ports.ocsp = await freePort();
  env.PKI_PUBLIC_URL = `http://127.0.0.1:${ports.crl}`;

  const migrated = pki(["migrate", "--grant-roles"], { ...env, DATABASE_URL: urls.migrate });
  expect(migrated.status, migrated.stderr).toBe(0);
  const init = pki(["init"], { ...env, DATABASE_URL: urls.migrate });
  expect(init.status, init.stderr).toBe(0);
  // Issued through the API's user: issuance works within its grants.
  const dir = scratchDir();
  certPath = path.join(dir, "cert.pem");
  chainPath = path.join(dir, "chain.pem");
  const csr = opensslCsr({ subject: "/CN=least.example.com", sans: ["DNS:least.example.com"], dir });
  const issued = pki(["issue", "--csr", csr.csrPath, "--out", certPath, "--chain-out", chainPath], { ...env, DATABASE_URL: urls.api });
  expect(issued.status, issued.stderr).toBe(0);
  issuerPath = path.join(dir, "issuer.pem");
  const chain = readFileSync(chainPath, "utf8");
  writeFileSync(issuerPath, chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 25));

  // The publisher (pki_crl, with the token) pre-signs; the responder (pki_ocsp, no token,
  // no data dir, no PIN) serves what it signed.
  start("crl", "apps/crl-publisher/src/main.ts", { ...env, DATABASE_URL: urls.crl, PKI_HTTP_PORT: String(ports.crl) });
  await waitReady("crl");
  start("ocsp", "apps/ocsp-responder/src/main.ts", {
    DATABASE_URL: urls.ocsp,
    PKI_DATA_DIR: mkdtempSync(path.join(tmpdir(), "pki-least-ocsp-")),
    PKI_HTTP_PORT: String(ports.ocsp),
    PKI_BIND: "127.0.0.1",
    PKI_LOG_LEVEL: "warn",
  });
  await waitReady("ocsp");
  // Four CLI runs and two app start-ups, each a fresh node process: minutes on a loaded machine.
}, 300_000);

afterAll(async () => {
  for (const client of clients) await client.end().catch(() => {});
  stopSpawnedApps();
  await db?.drop();
});

describe("database users per role", () => {
  it("the OCSP responder answers for a real certificate with its read-only user, and never opens the token", async () => {
    let answer = ocspAnswer();
    for (let i = 0; i < 40 && !/: good/.test(answer.stdout); i++) {
      await new Promise((r) => setTimeout(r, 250));
      answer = ocspAnswer();
    }
    expect(answer.stdout).toMatch(/: good/);
    expect(answer.stderr).toMatch(/Response verify OK/);
    expect(hasTokenModule(apps.ocsp!.child.pid!)).toBe(false);
    // the check can fail: the publisher, which signs, has the module loaded
    expect(hasTokenModule(apps.crl!.child.pid!)).toBe(true);
  });

  it("the OCSP responder's process does not even load the PKCS#11 binding: nothing it runs can reach a token", async () => {
    await waitReady("ocsp");
    expect(hasPkcs11Binding(apps.ocsp!.child.pid!)).toBe(false);
    // the check can fail: the publisher, which signs, has the binding loaded
    expect(hasPkcs11Binding(apps.crl!.child.pid!)).toBe(true);
  });

  it("PostgreSQL refuses the OCSP user every write and every schema change", async () => {
    const ocsp = await connectAs("ocsp");
    // what it serves from, it may read
    expect((await ocsp.query("SELECT count(*)::int AS n FROM ocsp_responses")).rows[0].n).toBeGreaterThan(0);
    await ocsp.query("SELECT serial, issuer_id, status, revoked_at, revocation_reason, not_after FROM certificates LIMIT 1");
    for (const sql of [
      "INSERT INTO ocsp_responses (serial, issuer_id, cert_status, der_sha1, der_sha256, this_update, next_update, responder_id) SELECT serial || '00', issuer_id, cert_status, der_sha1, der_sha256, this_update, next_update, responder_id FROM ocsp_responses LIMIT 1",
      "UPDATE ocsp_responses SET next_update = now()",
      "DELETE FROM ocsp_responses",
      "UPDATE certificates SET status = 'revoked', revoked_at = now()",
      "DELETE FROM certificates",
      "INSERT INTO issuers (id) VALUES ('forged')",
      "UPDATE issuers SET status = 'retired'",
      "TRUNCATE ocsp_responses",
      "CREATE TABLE ocsp_shadow (x int)",
      "ALTER TABLE ocsp_responses ADD COLUMN x int",
      "DROP TABLE ocsp_responses",
      "CREATE INDEX ocsp_x ON ocsp_responses (this_update)",
      // nor read what it does not serve: certificate bodies, operators, the audit trail
      "SELECT der FROM certificates LIMIT 1",
      "SELECT * FROM admin_tokens",
      "SELECT * FROM audit_events",
      "SELECT * FROM provisioners",
    ])
      await refused(ocsp, sql);
    // the responses are all still there, unchanged, after the attempts
    const owner = await connectAs("migrate");
    expect((await owner.query("SELECT count(*)::int AS n FROM ocsp_responses WHERE next_update > now()")).rows[0].n).toBeGreaterThan(0);
  });

  it("the API's user cannot change the schema, rewrite history or delete what it issued", async () => {
    const api = await connectAs("api");
    await api.query("SELECT job FROM scheduler_jobs"); // job status; an operator may run a job now from the console
    await api.query("SELECT issuer_id, reissued FROM reissue_runs"); // re-issue progress, which every API process reports
    await api.query("UPDATE reissue_runs SET updated_at = updated_at"); // the process running a re-issue records it
    for (const sql of [
      "DROP TABLE certificates",
      "CREATE TABLE api_shadow (x int)",
      "ALTER TABLE certificates DROP COLUMN der",
      "TRUNCATE audit_events",
      "DELETE FROM audit_events",
      "UPDATE audit_events SET actor = 'someone else'",
      "DELETE FROM certificates",
      "DELETE FROM issuers",
      "DELETE FROM job_runs",
      "DELETE FROM scheduler_jobs",
      "DELETE FROM acme_accounts",
      "DELETE FROM reissue_runs",
      "DELETE FROM _prisma_migrations",
    ])
      await refused(api, sql);
  });

  it("the publisher's and the scheduler's users cannot reach operators' credentials or rewrite issuers", async () => {
    const crl = await connectAs("crl");
    for (const sql of [
      "SELECT * FROM admin_tokens",
      "SELECT * FROM console_sessions",
      "SELECT * FROM provisioners",
      "UPDATE issuers SET status = 'retired'",
      "DELETE FROM crl_state",
      "DELETE FROM audit_events",
      "UPDATE scheduler_jobs SET lease_holder = 'crl'",
      "UPDATE reissue_runs SET finished_at = now()",
      "CREATE TABLE crl_shadow (x int)",
    ])
      await refused(crl, sql);
    const scheduler = await connectAs("scheduler");
    for (const sql of [
      "SELECT * FROM admin_tokens",
      "SELECT * FROM console_sessions",
      "UPDATE provisioners SET disabled = true",
      "DELETE FROM audit_events",
      "UPDATE crl_state SET full_number = 0",
      "DROP TABLE scheduler_jobs",
      "UPDATE reissue_runs SET finished_at = now()",
    ])
      await refused(scheduler, sql);
  });

  it("the ACME validator's user claims and records validations, and reaches nothing else", async () => {
    const store = await openAcmeValidationStore({ url: urls.validator, embeddedDir: "" });
    try {
      const now = new Date();
      expect(await store.acme.claimValidations(now, new Date(now.getTime() + 60_000), new Date(now.getTime() - 60_000), 10)).toEqual([]);
      await store.acme.finishChallenge("no-such-challenge", { ok: true }, now);
      await store.acme.releaseValidation("no-such-challenge");
    } finally {
      await store.close();
    }
    // as its own role (compose), on that user, it answers readiness like the other roles
    ports.validator = await freePort();
    start("validator", "apps/acme-validator/src/main.ts", { DATABASE_URL: urls.validator, PKI_HTTP_PORT: String(ports.validator) });
    await waitReady("validator");
    const validator = await connectAs("validator");
    for (const sql of [
      "SELECT serial FROM certificates",
      "SELECT * FROM admin_tokens",
      "SELECT token_hash FROM provisioners",
      "SELECT jwk FROM acme_accounts",
      "SELECT hmac_key FROM acme_eab_keys",
      "UPDATE acme_accounts SET status = 'deactivated'",
      "INSERT INTO audit_events (actor, action) VALUES ('validator', 'x')",
      "DELETE FROM acme_challenges",
    ])
      await refused(validator, sql);
  });

  it("the API's and the scheduler's users do their work within their grants", () => {
    // an emergency ceremony the API offers: new intermediate, root CRL and root OCSP re-signed
    const rotated = pki(["issuers", "rotate"], { ...env, DATABASE_URL: urls.api });
    expect(rotated.status, rotated.stderr).toBe(0);
    for (const job of ["renewal", "expiry-alerts", "issuer-health", "issuer-lifecycle", "webhook-delivery", "reconcile-intents", "clock-check", "responder-key-cleanup"]) {
      const ran = pki(["scheduler", "run-once", job], { ...env, DATABASE_URL: urls.scheduler });
      expect(ran.status, `${job}: ${ran.stderr}`).toBe(0);
      expect(JSON.parse(ran.stdout).outcome, `${job}: ${ran.stdout}`).toBe("ok");
    }
  }, 300_000);

  it("a role on a schema that is behind stops at start with one line telling to run pki migrate", async () => {
    const empty = await freshDatabase();
    try {
      const url = new URL(urls.ocsp);
      url.pathname = new URL(empty.url).pathname;
      const port = await freePort();
      const child = spawnApp("apps/ocsp-responder/src/main.ts", {
        env: childEnv({ DATABASE_URL: url.toString(), PKI_DATA_DIR: mkdtempSync(path.join(tmpdir(), "pki-least-behind-")), PKI_HTTP_PORT: String(port), PKI_BIND: "127.0.0.1" }),
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const [code] = await once(child, "exit");
      expect(code).toBe(1);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(/^ocsp-responder: the database schema is behind this version .*run `pki migrate`/);
      // and it created nothing there
      const owner = new pg.Client({ connectionString: empty.url });
      await owner.connect();
      try {
        expect((await owner.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n).toBe(0);
      } finally {
        await owner.end();
      }
    } finally {
      await empty.drop();
    }
  });

  it("a responder that never polls hears of a revocation when the pre-signer commits it (LISTEN/NOTIFY)", async () => {
    // Its poll timer would first fire in an hour: whatever it learns comes from notifications.
    ports.quiet = await freePort();
    start("quiet", "apps/ocsp-responder/src/main.ts", {
      DATABASE_URL: urls.ocsp,
      PKI_DATA_DIR: mkdtempSync(path.join(tmpdir(), "pki-least-quiet-")),
      PKI_HTTP_PORT: String(ports.quiet),
      PKI_BIND: "127.0.0.1",
      PKI_LOG_LEVEL: "warn",
      PKI_REVOCATION_POLL_MS: "3600000",
    });
    await waitReady("quiet");
    const ask = () => run("openssl", ["ocsp", "-issuer", issuerPath, "-cert", certPath, "-url", `http://127.0.0.1:${ports.quiet}/ocsp`, "-CAfile", chainPath]).stdout;
    expect(ask()).toMatch(/: good/); // now held in its memory
    const serial = run("openssl", ["x509", "-in", certPath, "-noout", "-serial"])
      .stdout.trim()
      .replace(/^serial=/, "")
      .toLowerCase();
    const revoked = pki(["cert", "revoke", serial, "--reason", "keyCompromise"], { ...env, DATABASE_URL: urls.api });
    expect(revoked.status, revoked.stderr).toBe(0);
    let answer = ask();
    for (let i = 0; i < 120 && !/: revoked/.test(answer); i++) {
      await new Promise((r) => setTimeout(r, 250));
      answer = ask();
    }
    expect(answer).toMatch(/: revoked/);
    expect(apps.quiet!.output()).not.toMatch(/cannot listen/);
  });
});
