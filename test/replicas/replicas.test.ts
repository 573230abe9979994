// Several replicas of every role sharing one PostgreSQL, as users grow past one machine:
// a primary with a streaming-replication hot standby, two API processes, two OCSP
// responders (one reading from the standby), two CRL publishers and two schedulers, all
// signing roles on one SoftHSM token directory (the stand-in for a network HSM), and
// nginx in front as deploy/nginx.conf describes (plus TCP passthrough to the APIs).
// A mixed load goes through nginx; during it one replica of each role is SIGKILLed and
// restarted, and the primary is crashed and restarted. Then the invariants are checked.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicOCSPResponse, OCSPResponse } from "@peculiar/asn1-ocsp";
import { CertificateList, CRLNumber } from "@peculiar/asn1-x509";
import { parse } from "yaml";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { caCertificateFacts, certIdFor } from "@pki/x509";
import * as der from "@pki/der";
import { REPO_ROOT } from "../support/harness.ts";
import { replicatedPostgres, type ReplicatedPostgres } from "../support/replication.ts";
import { buildDist, freePort, imageCommand, opensslCsr, which } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

/** Certificates issued through nginx; every `REVOKE_EVERY`th is revoked. */
const ISSUANCES = 48;
const REVOKE_EVERY = 6;
/** OCSP GETs through nginx during the load */
const OCSP_QUERIES = 150;
/** how long an answer may take to appear before the test gives up (not a speed assertion) */
const VISIBLE_WITHIN_MS = 120_000;
const CRL_OID = "2.5.29.20";

const compose = parse(readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, { command?: string[]; environment?: Record<string, string> }>;
};

interface Replica {
  name: string;
  role: string;
  port: number;
  env: Record<string, string>;
  child: ChildProcess;
  output: string;
  /** set just before the test kills it: any other exit is a replica dying by itself */
  killing?: boolean;
}
/** per replica, from its kill to its restart: answers measured across one are not steady-state figures */
const downWindows = new Map<string, Array<[number, number]>>();
/** replicas that exited without being killed, with the end of their output */
const unexpectedExits: string[] = [];

let pgPair: ReplicatedPostgres;
/** the apps compiled as the image compiles them: every replica runs what compose runs */
let dist: ReturnType<typeof buildDist>;
let work: string;
let dataDir: string;
let secrets: string;
let edgePort: number;
let apiEdgePort: number;
let nginx: ChildProcess | undefined;
let nginxDir: string;
const replicas = new Map<string, Replica>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const testStarted = Date.now();
/** progress on stderr as it happens: a run that stalls shows where */
const progress = (what: string) => process.stderr.write(`[replicas +${((Date.now() - testStarted) / 1000).toFixed(1)}s] ${what}\n`);

/** The compose environment of `service` with a temp dir for volumes and secrets, and this host's ports. */
function environmentOf(service: string, databaseUrl: string, httpPort: number, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, raw] of Object.entries(compose.services[service]!.environment ?? {})) {
    env[key] = String(raw)
      .replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1")
      .replace(/^\/run\/secrets\//, `${secrets}/`)
      .replace(/^\/var\/lib\/pki$/, dataDir);
  }
  delete env.DATABASE_URL_FILE;
  return {
    ...env,
    DATABASE_URL: databaseUrl,
    PKI_BIND: "127.0.0.1",
    PKI_HTTP_PORT: String(httpPort),
    PKI_PUBLIC_URL: `http://127.0.0.1:${edgePort}`,
    PKI_LOG_LEVEL: "warn",
    PKI_CRL_DEBOUNCE_MS: "200",
    PKI_SCHEDULER_LEASE_SECONDS: "30",
    PKI_SCHEDULER_RETRY_SECONDS: "5",
    // every job due every minute: a run of a few minutes crosses several due times
    ...Object.fromEntries(
      ["RENEWAL", "EXPIRY_ALERTS", "ISSUER_HEALTH", "ISSUER_LIFECYCLE", "WEBHOOK_DELIVERY", "RECONCILE_INTENTS", "CLOCK_CHECK", "RESPONDER_KEY_CLEANUP"].map((job) => [
        `PKI_SCHEDULE_${job}`,
        "* * * * *",
      ]),
    ),
    ...extra,
  };
}

function spawnRole(role: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, imageCommand(compose.services[role]!.command!, dist.dir), { cwd: REPO_ROOT, env: { PATH: childEnv().PATH!, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { child, output: () => output };
}

async function startReplica(name: string): Promise<void> {
  const replica = replicas.get(name)!;
  const { child, output } = spawnRole(replica.role, replica.env);
  replica.child = child;
  replica.killing = false;
  Object.defineProperty(replica, "output", { get: output, configurable: true });
  child.once("exit", (code, signal) => {
    if (!replica.killing) {
      unexpectedExits.push(`${name} exited (${code ?? signal}):\n${output().slice(-2000)}`);
      progress(`${name} exited by itself (${code ?? signal})`);
    }
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${replica.port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} is not ready:\n${replica.output}`);
    await sleep(250);
  }
}

async function addReplica(name: string, role: string, databaseUrl: string, extra: Record<string, string> = {}): Promise<void> {
  const port = await freePort();
  replicas.set(name, { name, role, port, env: environmentOf(role, databaseUrl, port, extra), child: undefined as never, output: "" });
  await startReplica(name);
  progress(`${name} ready`);
}

async function killAndRestart(name: string): Promise<void> {
  const replica = replicas.get(name)!;
  const downFrom = Date.now();
  replica.killing = true;
  if (replica.child.exitCode === null && replica.child.signalCode === null) {
    const exited = once(replica.child, "exit");
    replica.child.kill("SIGKILL");
    await exited;
  }
  progress(`${name} killed`);
  await startReplica(name);
  downWindows.set(name, [...(downWindows.get(name) ?? []), [downFrom, Date.now()]]);
  progress(`${name} restarted`);
}

/** deploy/nginx.conf with this test's upstreams and port, plus a TCP passthrough to the API replicas. */
function nginxConfig(upstreams: { ocsp: number[]; crl: number[]; api: number[] }): string {
  const servers = (ports: number[]) => ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=1s;`).join(" ");
  const deployed = readFileSync(path.join(REPO_ROOT, "deploy/nginx.conf"), "utf8")
    .replace(/server ocsp-responder:8080;/, servers(upstreams.ocsp))
    .replace(/server crl-publisher:8080;/, servers(upstreams.crl))
    .replace(/listen 8080;/, `listen 127.0.0.1:${edgePort};`);
  expect(deployed).toContain(`127.0.0.1:${upstreams.ocsp[0]}`);
  expect(deployed).toContain(`127.0.0.1:${upstreams.crl[0]}`);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${nginxDir}/${t};`).join("\n  ");
  return `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user root;
worker_processes 1;
pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp}
${deployed}
}
stream {
  upstream api { ${servers(upstreams.api)} }
  server { listen 127.0.0.1:${apiEdgePort}; proxy_pass api; proxy_connect_timeout 2s; }
}
`;
}

interface Issued {
  serial: string;
  der: Buffer;
  issuerId: string;
  receivedAt: number;
  revoked?: boolean;
}

const counts = { issueAttempts: 0, retries: 0, revokeAttempts: 0, ocspViaEdge: 0, ocspEdgeNotYet: 0 };

function api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const token = readFileSync(path.join(secrets, "admin_token"), "utf8").trim();
  // a new connection per request: nginx balances connections, not requests
  const agent = new Agent({ keepAlive: false, ca: readFileSync(path.join(dataDir, "root.pem")) });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: apiEdgePort,
        path: urlPath,
        method,
        agent,
        servername: "localhost",
        timeout: 30_000,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode!, json: JSON.parse(text || "{}") });
          } catch {
            resolve({ status: res.statusCode!, json: { text } });
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Retries what failed without an answer or with 5xx (a replica or the primary was down), as a client would. */
async function withRetries<T extends { status: number }>(what: string, call: () => Promise<T>, accept: (r: T, attempt: number) => boolean): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (let attempt = 0; ; attempt++) {
    const result = await call().catch((error: Error) => ({ status: 0, error }) as unknown as T);
    if (accept(result, attempt)) return result;
    if (result.status >= 400 && result.status < 500 && result.status !== 429) throw new Error(`${what}: ${result.status} ${JSON.stringify(result)}`);
    if (Date.now() > deadline) throw new Error(`${what}: still failing after ${attempt + 1} attempts: ${JSON.stringify(result)}`);
    counts.retries++;
    progress(`${what}: attempt ${attempt + 1} failed (${result.status || (result as unknown as { error: Error }).error?.message}); retrying`);
    await sleep(250);
  }
}

let issuer: ReturnType<typeof caCertificateFacts>;
const ocspGet = (base: string, serial: string) => `${base}/ocsp/${encodeURIComponent(der.sequence(der.sequence(der.sequence(der.sequence(certIdFor("sha1", issuer, serial))))).toString("base64"))}`;

async function ocspStatus(base: string, serial: string): Promise<string> {
  const res = await fetch(ocspGet(base, serial), { signal: AbortSignal.timeout(10_000) });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return `http ${res.status}`;
  const response = AsnConvert.parse(body, OCSPResponse);
  if (response.responseStatus !== 0 || !response.responseBytes) return `responseStatus ${response.responseStatus}`;
  const basic = AsnConvert.parse(response.responseBytes.response.buffer, BasicOCSPResponse);
  const status = basic.tbsResponseData.responses[0]!.certStatus;
  return status.good !== undefined ? "good" : status.revoked ? "revoked" : "unknown";
}

/** Polls a responder until it gives one of `expected` for the certificate; the time it took from `since`. */
async function answeredAfter(base: string, serial: string, expected: string[], since: number, interim?: Map<string, number>): Promise<number> {
  const deadline = Date.now() + VISIBLE_WITHIN_MS;
  let last = "";
  for (;;) {
    last = await ocspStatus(base, serial).catch((error: Error) => `error ${error.message.slice(0, 60)}`);
    if (!expected.includes(last)) interim?.set(last, (interim.get(last) ?? 0) + 1);
    if (expected.includes(last)) return Date.now() - since;
    if (Date.now() > deadline) throw new Error(`${base} answered ${last} for ${serial}, not ${expected}, for ${VISIBLE_WITHIN_MS} ms`);
    await sleep(50);
  }
}

interface SeenCrl {
  source: string;
  kind: "full" | "delta";
  issuerId: string;
  number: bigint;
  thisUpdate: number;
  sha256: string;
  serials: Set<string>;
}

function parseCrl(body: Buffer): Omit<SeenCrl, "source" | "kind" | "issuerId"> {
  const crl = AsnConvert.parse(body, CertificateList);
  const ext = crl.tbsCertList.crlExtensions?.find((e) => e.extnID === CRL_OID);
  if (!ext) throw new Error("CRL without a CRL number");
  const number = BigInt(AsnConvert.parse(ext.extnValue.buffer, CRLNumber).value);
  const serials = new Set((crl.tbsCertList.revokedCertificates ?? []).map((r) => normal(Buffer.from(r.userCertificate).toString("hex"))));
  return { number, thisUpdate: crl.tbsCertList.thisUpdate.getTime().getTime(), sha256: createHash("sha256").update(body).digest("hex"), serials };
}

const report: Record<string, unknown> = {};
/** serials as hex without leading zero octets, upper case: how the API, X509Certificate and CRLs compare */
const normal = (serial: string) => serial.replace(/^(00)+/, "").toUpperCase();

describe.skipIf(!which("nginx"))("replicas of every role on one PostgreSQL with a hot standby", () => {
  beforeAll(async () => {
    const started = Date.now();
    dist = buildDist();
    pgPair = await replicatedPostgres();
    work = mkdtempSync(path.join(tmpdir(), "pki-replicas-"));
    dataDir = path.join(work, "data");
    secrets = path.join(work, "secrets");
    nginxDir = path.join(work, "nginx");
    for (const d of [dataDir, nginxDir]) mkdirSync(d);
    mkdirSync(secrets, { mode: 0o700 });
    for (const secret of ["issuing_pin", "root_pin", "admin_token"]) writeFileSync(path.join(secrets, secret), `${secret}-${Math.random().toString(36).slice(2)}-value\n`, { mode: 0o600 });
    edgePort = await freePort();
    apiEdgePort = await freePort();

    // The ceremony once, against the primary; every signing role then opens the same token directory.
    const init = spawnRole("init", environmentOf("init", pgPair.primaryUrl, await freePort()));
    const [code] = await once(init.child, "exit");
    expect(code, init.output()).toBe(0);
    issuer = caCertificateFacts(
      Buffer.from(
        readFileSync(path.join(dataDir, "chain.pem"), "utf8")
          .split("-----END CERTIFICATE-----")[0]!
          .replace(/-----BEGIN CERTIFICATE-----|\s/g, ""),
        "base64",
      ),
    );

    // Publishers first: they sign the first CRLs and OCSP answers.
    await Promise.all(["crl-1", "crl-2"].map((name) => addReplica(name, "crl-publisher", pgPair.primaryUrl)));
    const [apiPort1, apiPort2] = [await freePort(), await freePort()];
    await Promise.all([
      addReplica("api-1", "api", pgPair.primaryUrl, { PKI_API_PORT: String(apiPort1) }),
      addReplica("api-2", "api", pgPair.primaryUrl, { PKI_API_PORT: String(apiPort2) }),
      addReplica("ocsp-primary", "ocsp-responder", pgPair.primaryUrl),
      addReplica("ocsp-standby", "ocsp-responder", pgPair.standbyUrl),
      addReplica("scheduler-1", "scheduler", pgPair.primaryUrl),
      addReplica("scheduler-2", "scheduler", pgPair.primaryUrl),
    ]);

    const port = (name: string) => replicas.get(name)!.port;
    writeFileSync(
      path.join(nginxDir, "nginx.conf"),
      nginxConfig({ ocsp: [port("ocsp-primary"), port("ocsp-standby")], crl: [port("crl-1"), port("crl-2")], api: ["api-1", "api-2"].map((n) => Number(replicas.get(n)!.env.PKI_API_PORT)) }),
    );
    nginx = spawn("nginx", ["-p", nginxDir, "-c", path.join(nginxDir, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
    let nginxOutput = "";
    nginx.stderr!.on("data", (d) => (nginxOutput += d));
    for (let i = 0; ; i++) {
      const up = await fetch(`http://127.0.0.1:${edgePort}/ca/root.pem`).then(
        () => true,
        () => false,
      );
      if (up) break;
      if (nginx.exitCode !== null || i > 100) throw new Error(`nginx did not start: ${nginxOutput}`);
      await sleep(100);
    }
    report.startupSeconds = (Date.now() - started) / 1000;
  }, 300_000);

  afterAll(async () => {
    for (const replica of replicas.values())
      if (replica.child && replica.child.exitCode === null) {
        replica.killing = true;
        replica.child.kill("SIGKILL");
      }
    if (nginx && nginx.exitCode === null) {
      nginx.kill("SIGTERM");
      await once(nginx, "exit");
    }
    pgPair?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
    dist?.remove();
    console.log(`replicas report: ${JSON.stringify(report, null, 2)}`);
  });

  it("survives killed replicas and a primary restart under load, losing and duplicating nothing", { timeout: 400_000 }, async () => {
    const loadStarted = Date.now();
    const issued: Issued[] = [];
    const revokedOk = new Set<string>();
    const visibility: Record<string, Array<{ ms: number; from: number; to: number }>> = { "ocsp-primary": [], "ocsp-standby": [] };
    const watchers: Promise<void>[] = [];
    const watchFailures: string[] = [];
    /** what each responder said before it knew a new certificate */
    const interimAnswers: Record<string, Map<string, number>> = { "ocsp-primary": new Map(), "ocsp-standby": new Map() };
    const crls: SeenCrl[] = [];
    const lagSamples: number[] = [];
    let issuerId = "";
    let loading = true;

    // CRL readers: through the edge, and from each publisher directly, over and over.
    const crlReader = (async () => {
      while (loading || crls.length === 0) {
        if (issuerId) {
          const sources = [["edge", edgePort], ...["crl-1", "crl-2"].map((n) => [n, replicas.get(n)!.port])] as const;
          for (const [source, port] of sources)
            for (const kind of ["full", "delta"] as const) {
              const res = await fetch(`http://127.0.0.1:${port}/crl/${issuerId}${kind === "delta" ? "-delta" : ""}.crl`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
              if (res?.status !== 200) continue;
              crls.push({ source, kind, issuerId, ...parseCrl(Buffer.from(await res.arrayBuffer())) });
            }
        }
        await sleep(300);
      }
    })();

    // Replication lag, sampled through the load (a sample that meets the primary's restart is dropped).
    const lagSampler = (async () => {
      while (loading) {
        const lag = await pgPair.measureLagMs(20_000).catch(() => undefined);
        if (lag !== undefined) lagSamples.push(lag);
        await sleep(200);
      }
    })();

    // OCSP GETs through the edge for certificates already issued. The responder on the
    // standby may not have the newest one yet: it says "try later" (503) or, before the row
    // has replicated, "unauthorized". Anything else but a signed status is a failure.
    const notYet = new Set(["http 503", "responseStatus 6"]);
    const ocspLoad = (async () => {
      const problems: string[] = [];
      for (let i = 0; i < OCSP_QUERIES; i++) {
        while (issued.length === 0) await sleep(50);
        const target = issued[i % issued.length]!;
        const status = await ocspStatus(`http://127.0.0.1:${edgePort}`, target.serial).catch((error: Error) => `error ${error.message}`);
        counts.ocspViaEdge++;
        if (counts.ocspViaEdge % 50 === 0) progress(`${counts.ocspViaEdge} OCSP queries through the edge`);
        if (notYet.has(status)) counts.ocspEdgeNotYet++;
        else if (!["good", "revoked"].includes(status)) problems.push(status);
        await sleep(20);
      }
      return problems;
    })();

    const csrs = Array.from({ length: ISSUANCES }, (_, i) => opensslCsr({ subject: `/CN=svc${i}.replicas.test` }));
    const disruptions: Array<{ after: number; what: string; run: () => Promise<void> }> = [
      {
        after: 8,
        what: "SIGKILL and restart api-1, ocsp-primary, crl-1, scheduler-1",
        run: async () => void (await Promise.all(["api-1", "ocsp-primary", "crl-1", "scheduler-1"].map(killAndRestart))),
      },
      {
        after: 20,
        what: "crash and restart the primary",
        run: async () => {
          progress("primary: crash");
          const from = Date.now();
          pgPair.restartPrimary();
          downWindows.set("primary", [[from, Date.now()]]);
          progress("primary: restarted");
        },
      },
      {
        after: 32,
        what: "SIGKILL and restart api-2, ocsp-standby, crl-2, scheduler-2",
        run: async () => void (await Promise.all(["api-2", "ocsp-standby", "crl-2", "scheduler-2"].map(killAndRestart))),
      },
    ];
    // One disruption at a time, each once the load has reached its count; clients wait at
    // the next count until it has begun, so every disruption meets load in flight.
    const begun = new Set<number>();
    const disruptor = (async () => {
      for (const d of disruptions) {
        while (issued.length < d.after) await sleep(50);
        begun.add(d.after);
        progress(`disruption: ${d.what}`);
        await d.run();
      }
    })();

    // Four clients issuing (and revoking every few) concurrently through the edge.
    let next = 0;
    const client = async () => {
      for (;;) {
        const i = next++;
        if (i >= ISSUANCES) return;
        for (const d of disruptions) while (d.after <= i && !begun.has(d.after)) await sleep(50);
        counts.issueAttempts++;
        const res = await withRetries(
          `issue ${i}`,
          () => api("POST", "/v1/certificates", { csr: csrs[i]!.csrPem, profile: "mtls", ttlSeconds: 3600 }),
          (r) => r.status === 201,
        );
        const cert: Issued = { serial: String(res.json.serial), der: new X509Certificate(String(res.json.certificate)).raw, issuerId: String(res.json.issuerId), receivedAt: Date.now() };
        issuerId ||= cert.issuerId;
        issued.push(cert);
        if (issued.length % 8 === 0) progress(`${issued.length} issued`);
        for (const name of ["ocsp-primary", "ocsp-standby"] as const)
          watchers.push(
            answeredAfter(`http://127.0.0.1:${replicas.get(name)!.port}`, cert.serial, ["good", "revoked"], cert.receivedAt, interimAnswers[name]).then(
              (ms) => void visibility[name]!.push({ ms, from: cert.receivedAt, to: Date.now() }),
              (error: Error) => void watchFailures.push(error.message),
            ),
          );
        if (i % REVOKE_EVERY === REVOKE_EVERY - 1) {
          counts.revokeAttempts++;
          await withRetries(
            `revoke ${cert.serial}`,
            () => api("POST", `/v1/certificates/${cert.serial}/revoke`, { reason: "keyCompromise" }),
            // A retry whose first attempt was revoked but its answer lost (the replica was
            // killed mid-reply) finds it already revoked: that is the outcome asked for.
            (r, attempt) => r.status === 200 || (attempt > 0 && r.status === 409 && JSON.stringify(r).includes("is already revoked")),
          );
          cert.revoked = true;
          revokedOk.add(cert.serial);
        }
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    progress("all issued");
    await disruptor;
    const ocspProblems = await ocspLoad;
    progress("OCSP load done");
    await Promise.all(watchers);
    progress("every responder answered every certificate");
    report.loadSeconds = (Date.now() - loadStarted) / 1000;

    // Revoked certificates: every responder says so, and the CRLs list them.
    for (const cert of issued.filter((c) => c.revoked))
      for (const name of ["ocsp-primary", "ocsp-standby"]) await answeredAfter(`http://127.0.0.1:${replicas.get(name)!.port}`, cert.serial, ["revoked"], Date.now());
    const listed = async () => {
      const lists = await Promise.all(
        ["", "-delta"].map(
          async (suffix) => parseCrl(Buffer.from(await (await fetch(`http://127.0.0.1:${edgePort}/crl/${issuerId}${suffix}.crl`, { signal: AbortSignal.timeout(10_000) })).arrayBuffer())).serials,
        ),
      );
      return [...revokedOk].every((s) => lists.some((l) => l.has(normal(s))));
    };
    for (let i = 0; !(await listed()); i++) {
      if (i > 120) throw new Error("the revoked certificates never all appeared on the CRLs");
      await sleep(500);
    }
    progress("revocations on every responder and CRL");
    loading = false;
    await Promise.all([crlReader, lagSampler]);

    // 1. No serial issued twice: not among what clients received, nor in the inventory.
    const db = new pg.Client({ connectionString: pgPair.primaryUrl });
    await db.connect();
    try {
      expect(issued).toHaveLength(ISSUANCES);
      expect(new Set(issued.map((c) => c.serial)).size).toBe(ISSUANCES);
      for (const cert of issued) expect(normal(new X509Certificate(cert.der).serialNumber)).toBe(normal(cert.serial));
      const duplicates = await db.query("SELECT serial FROM certificates GROUP BY serial HAVING count(*) > 1");
      expect(duplicates.rows).toEqual([]);

      // 2. Nothing the client was told succeeded is lost: every certificate received is in
      //    the inventory with the same DER, and every acknowledged revocation is recorded.
      const stored = await db.query<{ serial: string; der: Buffer; status: string }>("SELECT serial, der, status FROM certificates WHERE serial = ANY($1)", [issued.map((c) => c.serial)]);
      const bySerial = new Map(stored.rows.map((r) => [r.serial, r]));
      for (const cert of issued) {
        const row = bySerial.get(cert.serial);
        expect(row?.der.equals(cert.der), cert.serial).toBe(true);
        expect(row?.status, cert.serial).toBe(cert.revoked ? "revoked" : "valid");
      }

      // 3. CRLs: per issuer and kind, one CRL per number, and numbers grow with time.
      expect(crls.length).toBeGreaterThan(0);
      for (const kind of ["full", "delta"] as const) {
        const byNumber = new Map<bigint, Set<string>>();
        for (const crl of crls.filter((c) => c.kind === kind)) byNumber.set(crl.number, (byNumber.get(crl.number) ?? new Set()).add(crl.sha256));
        for (const [number, hashes] of byNumber) expect(hashes.size, `${kind} CRL number ${number}`).toBe(1);
        const distinct = [...new Map(crls.filter((c) => c.kind === kind).map((c) => [c.sha256, c])).values()].sort((a, b) => (a.number < b.number ? -1 : 1));
        for (let i = 1; i < distinct.length; i++)
          expect(distinct[i]!.thisUpdate, `${kind} CRL ${distinct[i]!.number} is older than ${distinct[i - 1]!.number}`).toBeGreaterThanOrEqual(distinct[i - 1]!.thisUpdate);
        // one publisher never serves an older CRL after a newer one
        for (const source of ["crl-1", "crl-2"]) {
          const seen = crls.filter((c) => c.kind === kind && c.source === source).map((c) => c.number);
          for (let i = 1; i < seen.length; i++) expect(seen[i]! >= seen[i - 1]!, `${source} ${kind}: ${seen[i - 1]} then ${seen[i]}`).toBe(true);
        }
        report[`${kind}CrlNumbersSeen`] = distinct.map((c) => Number(c.number));
      }
      const state = await db.query<{ last_number: string; full_number: string }>("SELECT last_number, full_number FROM crl_state WHERE issuer_id = $1", [issuerId]);
      expect(BigInt(state.rows[0]!.last_number)).toBeGreaterThanOrEqual(crls.reduce((max, c) => (c.number > max ? c.number : max), 0n));

      // 4. Each scheduler job ran once per due time (a run left "running" by a killed
      //    replica is the only one that may share its due time, with the run that took over).
      const runs = await db.query<{ job: string; due_at: Date; runner: string; outcome: string }>("SELECT job, due_at, runner, outcome FROM job_runs ORDER BY id");
      const finished = runs.rows.filter((r) => r.outcome !== "running");
      const perDue = new Map<string, number>();
      for (const run of finished) perDue.set(`${run.job} ${run.due_at.toISOString()}`, (perDue.get(`${run.job} ${run.due_at.toISOString()}`) ?? 0) + 1);
      expect([...perDue].filter(([, n]) => n > 1)).toEqual([]);
      const jobs = new Set(finished.map((r) => r.job));
      expect(jobs.size).toBeGreaterThanOrEqual(8);
      // For the capacity sketch: what one certificate costs the database (row bytes, before indexes).
      const size = await db.query<{ certs: number; cert: number; ocsp: number; audit: number; total: string }>(
        `SELECT (SELECT count(*) FROM certificates)::int AS certs,
                (SELECT sum(pg_column_size(t.*)) FROM certificates t)::int AS cert,
                (SELECT sum(pg_column_size(t.*)) FROM ocsp_responses t)::int AS ocsp,
                (SELECT sum(pg_column_size(t.*)) FROM audit_events t)::int AS audit,
                pg_database_size(current_database())::text AS total`,
      );
      const { certs, cert, ocsp, audit, total } = size.rows[0]!;
      report.rowBytesPerCertificate = {
        certificate: Math.round(cert / certs),
        ocspResponse: Math.round(ocsp / certs),
        auditEvents: Math.round(audit / certs),
        certificates: certs,
        databaseBytes: Number(total),
      };
      report.schedulerRuns = { finished: finished.length, dueTimes: perDue.size, runners: [...new Set(finished.map((r) => r.runner))].length, leftRunning: runs.rows.length - finished.length };
    } finally {
      await db.end();
    }

    // 5. Every responder answered every certificate (measured above); through the edge, all signed answers.
    expect(unexpectedExits).toEqual([]);
    expect(ocspProblems).toEqual([]);
    expect(watchFailures).toEqual([]);
    for (const name of ["ocsp-primary", "ocsp-standby"]) expect(visibility[name], name).toHaveLength(ISSUANCES);
    const stats = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
      return { n: sorted.length, p50: at(0.5), p95: at(0.95), max: Math.round(sorted.at(-1)!) };
    };
    // Steady state: no responder, publisher (it pre-signs the answers) or the primary was down
    // while the answer was awaited.
    const steady = (v: { from: number; to: number }) => ![...downWindows.values()].flat().some(([down, up]) => down < v.to && up > v.from);
    const visible = (name: string) => {
      const all = visibility[name]!;
      const calm = all.filter(steady);
      return { all: stats(all.map((v) => v.ms)), steady: calm.length ? stats(calm.map((v) => v.ms)) : "none", steadyWithin1s: `${calm.filter((v) => v.ms <= 1000).length} of ${calm.length}` };
    };
    report.ocspVisibleAfterIssueMs = { primary: visible("ocsp-primary"), standby: visible("ocsp-standby") };
    report.ocspAnswersBeforeVisible = Object.fromEntries(Object.entries(interimAnswers).map(([name, answers]) => [name, Object.fromEntries(answers)]));
    report.ocspVisibleFirstEightMs = Object.fromEntries(
      Object.entries(visibility).map(([name, v]) => [
        name,
        [...v]
          .sort((a, b) => a.from - b.from)
          .slice(0, 8)
          .map((x) => Math.round(x.ms)),
      ]),
    );
    report.replicationLagMs = stats(lagSamples);
    report.counts = counts;
    report.disruptions = disruptions.map((d) => `after ${d.after} issued: ${d.what}`);
  });
});
