// The ACME load generator every ACME server in the bench is measured with (ours and
// pebble alike): N clients, each with its own account, each looping over complete orders
// for a name never asked for before:
//   newOrder → POST-as-GET the authorization → answer http-01 from a shared in-process
//   HTTP server → poll the authorization until valid → finalize with a new CSR for the name
//   (signed with the client's one P-256 certificate key) → poll the order until valid →
//   download the certificate chain (leaf checked for the name).
// An order counts when its certificate is downloaded inside the measurement window; its
// latency runs from newOrder to the downloaded chain.
//
// The clients poll without sleeping blindly: the challenge server tells a client when its
// token has been fetched, and only then does it poll, at 5, 10, 20… ms (capped at 50 ms);
// an order in `processing` after finalize is polled the same way. This keeps polling from
// either adding idle time or flooding a server, for every contender alike.

// @peculiar/x509 (its tsyringe container) needs the Reflect metadata polyfill loaded first
import "reflect-metadata";
import { createServer, type Server } from "node:http";
import { Agent, request } from "node:https";
import { X509Certificate, generateKeyPairSync, webcrypto, type KeyObject } from "node:crypto";
import type { AddressInfo } from "node:net";
import * as x509 from "@peculiar/x509";
import { FlattenedSign, calculateJwkThumbprint, type JWK } from "jose";
import { percentile } from "./measure.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const CHALLENGE_PATH = "/.well-known/acme-challenge/";
/** how long a client waits for its token to be fetched before it polls anyway */
const FETCH_WAIT_MS = 2_000;
/** an order not done after this is an error (a stuck server must not hang the bench) */
const ORDER_TIMEOUT_MS = 60_000;
/**
 * No order completed for this long while 32 clients are busy: the server has stopped
 * answering (Debian's pebble 2.4 deadlocks on its in-memory store's locks under this load).
 * The window then ends at the last completion and the result says `stalled`.
 */
const STALL_MS = 5_000;

/**
 * The http-01 responder both servers validate against: answers
 * GET /.well-known/acme-challenge/<token> with the token's key authorization, and
 * tells the waiting client that its token was fetched. Entries live only while their
 * order is in flight (one per client), so the map stays small.
 */
export class Http01Responder {
  private readonly answers = new Map<string, { keyAuthorization: string; fetched: () => void }>();
  fetches = 0;
  misses = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<Http01Responder> {
    const server = createServer();
    const responder = new Http01Responder(server);
    server.on("request", (req, res) => {
      const url = req.url ?? "";
      const entry = url.startsWith(CHALLENGE_PATH) ? responder.answers.get(url.slice(CHALLENGE_PATH.length)) : undefined;
      if (!entry) {
        responder.misses++;
        res.writeHead(404).end();
        return;
      }
      responder.fetches++;
      res.writeHead(200, { "content-type": "text/plain" }).end(entry.keyAuthorization, () => entry.fetched());
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return responder;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Serves the key authorization for `token`; resolves once it has been fetched. */
  expect(token: string, keyAuthorization: string): Promise<void> {
    return new Promise((resolve) => this.answers.set(token, { keyAuthorization, fetched: resolve }));
  }

  forget(token: string): void {
    this.answers.delete(token);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}

class AcmeProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { type?: string; detail?: string },
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${problem.type ?? ""} ${problem.detail ?? ""}`.trim());
  }
}

/** One ACME server, as the clients reach it: its directory, over HTTPS trusting `ca` only. */
export interface AcmeTarget {
  directoryUrl: string;
  /** PEM of the CA that signed the server's HTTPS certificate (no verification is turned off) */
  ca: string;
}

export interface AcmeLoadOptions {
  target: AcmeTarget;
  responder: Http01Responder;
  clients: number;
  seconds: number;
  warmupSeconds: number;
  /** the DNS suffix every ordered name ends with (the names are unique per run) */
  domain: string;
  /** called before an order for `name` (e.g. to make the test DNS server answer it), and after */
  nameAdded?: (name: string) => void;
  nameRemoved?: (name: string) => void;
  /** awaited right before the measurement window opens and right after it closes (e.g. to read counters) */
  aroundMeasurement?: { start: () => Promise<void>; end: () => Promise<void> };
}

export interface AcmeLoadResult {
  orders: number;
  seconds: number;
  rate: number;
  errors: number;
  firstError?: string;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** HTTP requests the clients sent per completed order (measurement window) */
  requestsPerOrder: number;
  badNonceRetries: number;
  /** CPU the load generator's own process used during the measurement, in cores */
  loadGeneratorCores: number;
  /** median milliseconds of each phase of the counted orders */
  phaseP50: Record<Phase, number>;
  /** the server stopped completing orders; the window ended at the last completion */
  stalled: boolean;
}

/**
 * Where an order's time goes: newOrder; challenge (authorization read, challenge response
 * sent and answered); fetch (from that answer until the server fetched the token);
 * validation (from the fetch until the authorization reads valid); finalize (CSR made, finalize, until the order reads valid);
 * download (the chain).
 */
export type Phase = "newOrder" | "challenge" | "fetch" | "validation" | "finalize" | "download";
const PHASES: Phase[] = ["newOrder", "challenge", "fetch", "validation", "finalize", "download"];

interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
}

let runCounter = 0;

/** Runs the load: accounts first (not measured), then warm-up, then the measured window. */
export async function acmeLoad(options: AcmeLoadOptions): Promise<AcmeLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.clients * 2, ca: options.target.ca });
  const stats = { requests: 0, badNonceRetries: 0 };
  try {
    const call = (method: string, url: string, body?: string): Promise<Reply> =>
      new Promise((resolve, reject) => {
        stats.requests++;
        const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/jose+json", "content-length": String(Buffer.byteLength(body)) };
        const req = request(url, { method, agent, headers, timeout: 30_000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const buf = Buffer.concat(chunks);
            const type = String(res.headers["content-type"] ?? "");
            let json: unknown;
            if (/json/.test(type) && buf.length) {
              try {
                json = JSON.parse(buf.toString("utf8"));
              } catch {}
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json });
          });
          res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer in 30 s`)));
        req.on("error", reject);
        req.end(body);
      });

    const dirReply = await call("GET", options.target.directoryUrl);
    if (dirReply.status !== 200) throw new Error(`GET ${options.target.directoryUrl} answered ${dirReply.status}: ${dirReply.body.toString().slice(0, 300)}`);
    const directory = dirReply.json as Directory;
    const runId = `r${process.pid.toString(36)}${(runCounter++).toString(36)}${Date.now().toString(36)}`;

    const clients = await Promise.all(Array.from({ length: options.clients }, (_, i) => AcmeClient.create(call, directory, stats, `${runId}c${i}`)));

    let phase: "warmup" | "measure" | "done" = "warmup";
    let orders = 0;
    let errors = 0;
    let firstError: string | undefined;
    const latencies: number[] = [];
    const phaseTimes = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
    let requestsAtStart = 0;
    let requestsAtEnd = 0;
    let retriesAtStart = 0;
    let lastCompletion = 0;
    let stalled = false;
    const loop = async (client: AcmeClient) => {
      let seq = 0;
      while (phase !== "done") {
        const name = `${client.label}-${seq++}.${options.domain}`;
        const t = performance.now();
        try {
          options.nameAdded?.(name);
          const phases = await withTimeout(client.order(name, options.responder), ORDER_TIMEOUT_MS, `order for ${name}`);
          if (phase === "measure") {
            orders++;
            lastCompletion = performance.now();
            latencies.push(lastCompletion - t);
            for (const p of PHASES) phaseTimes[p].push(phases[p]);
          }
        } catch (error) {
          if (phase === "measure") errors++;
          firstError ??= (error as Error).message;
          if (errors > 200) phase = "done";
        } finally {
          options.nameRemoved?.(name);
        }
      }
    };
    const running = clients.map(loop);
    await sleep(options.warmupSeconds * 1000);
    await options.aroundMeasurement?.start();
    phase = "measure";
    requestsAtStart = stats.requests;
    retriesAtStart = stats.badNonceRetries;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    lastCompletion = t0;
    while (phase === "measure" && performance.now() - t0 < options.seconds * 1000) {
      await sleep(50);
      if (performance.now() - lastCompletion > STALL_MS) {
        stalled = true;
        break;
      }
    }
    const seconds = ((stalled ? lastCompletion : performance.now()) - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const counted = orders;
    requestsAtEnd = stats.requests;
    phase = "done";
    await options.aroundMeasurement?.end();
    // a stalled server never answers the requests in flight: the agent's sockets are
    // destroyed (finally, below) instead of waiting for their 30 s timeouts
    await Promise.race([Promise.all(running), sleep(stalled ? 0 : 10_000)]);
    latencies.sort((a, b) => a - b);
    return {
      orders: counted,
      seconds,
      rate: counted / seconds,
      errors,
      firstError,
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? Number.NaN,
      requestsPerOrder: counted ? (requestsAtEnd - requestsAtStart) / counted : Number.NaN,
      badNonceRetries: stats.badNonceRetries - retriesAtStart,
      loadGeneratorCores: (cpu.user + cpu.system) / 1e6 / seconds,
      stalled,
      phaseP50: Object.fromEntries(
        PHASES.map((p) => [
          p,
          percentile(
            phaseTimes[p].sort((a, b) => a - b),
            50,
          ),
        ]),
      ) as Record<Phase, number>,
    };
  } finally {
    agent.destroy();
  }
}

type Call = (method: string, url: string, body?: string) => Promise<Reply>;

/** One ACME client: an ES256 account, a nonce carried from reply to reply, one order at a time. */
class AcmeClient {
  private nonce: string | undefined;

  private constructor(
    private readonly call: Call,
    private readonly directory: Directory,
    private readonly stats: { badNonceRetries: number },
    readonly label: string,
    private readonly accountKey: KeyObject,
    private readonly jwk: JWK,
    private readonly thumbprint: string,
    /** the certificate key: one per client, reused for each of its CSRs (the names differ) */
    private readonly certKeys: CryptoKeyPair,
    private kid = "",
  ) {}

  static async create(call: Call, directory: Directory, stats: { badNonceRetries: number }, label: string): Promise<AcmeClient> {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = pair.publicKey.export({ format: "jwk" }) as JWK;
    const certKeys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const client = new AcmeClient(call, directory, stats, label, pair.privateKey, jwk, await calculateJwkThumbprint(jwk), certKeys);
    const account = await client.post(directory.newAccount, { termsOfServiceAgreed: true }, "newAccount", true);
    if (account.status !== 201 && account.status !== 200) throw new Error(`newAccount answered ${account.status}`);
    client.kid = String(account.headers.location);
    return client;
  }

  /** One complete order; returns the milliseconds each phase took. */
  async order(name: string, responder: Http01Responder): Promise<Record<Phase, number>> {
    const phases: Record<Phase, number> = { newOrder: 0, challenge: 0, fetch: 0, validation: 0, finalize: 0, download: 0 };
    let mark = performance.now();
    const lap = (phase: Phase) => {
      const now = performance.now();
      phases[phase] += now - mark;
      mark = now;
    };
    const created = await this.post(this.directory.newOrder, { identifiers: [{ type: "dns", value: name }] }, "newOrder");
    if (created.status !== 201) throw new Error(`newOrder answered ${created.status}`);
    const orderUrl = String(created.headers.location);
    let order = created.json as { status: string; authorizations: string[]; finalize: string; certificate?: string };
    lap("newOrder");
    for (const authzUrl of order.authorizations) {
      const authz = (await this.post(authzUrl, "", "authorization")).json as { status: string; challenges: Array<{ type: string; url: string; token: string }> };
      if (authz.status === "valid") continue;
      const challenge = authz.challenges.find((c) => c.type === "http-01");
      if (!challenge) throw new Error(`the authorization for ${name} offers no http-01 challenge`);
      const fetched = responder.expect(challenge.token, `${challenge.token}.${this.thumbprint}`);
      try {
        const answered = await this.post(challenge.url, {}, "challenge response");
        lap("challenge");
        if (answered.json?.status !== "valid") {
          await Promise.race([fetched, sleep(FETCH_WAIT_MS)]);
          lap("fetch");
          await this.pollUntil(
            authzUrl,
            "authorization",
            (s) => s === "valid",
            (s) => s !== "pending",
          );
        }
      } finally {
        responder.forget(challenge.token);
      }
      lap("validation");
    }
    const csr = await this.csr(name);
    const finalized = await this.post(order.finalize, { csr }, "finalize");
    order = finalized.json;
    if (order.status !== "valid")
      order = await this.pollUntil(
        orderUrl,
        "order",
        (s) => s === "valid",
        (s) => s === "invalid",
      );
    if (!order.certificate) throw new Error(`order ${orderUrl} is valid without a certificate URL`);
    lap("finalize");
    const chain = await this.post(order.certificate, "", "certificate download");
    const pem = chain.body.toString("utf8");
    const first = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0];
    if (!first) throw new Error(`the certificate download for ${name} holds no PEM certificate`);
    if (!new X509Certificate(first).subjectAltName?.includes(`DNS:${name}`)) throw new Error(`the downloaded certificate is not for ${name}`);
    lap("download");
    return phases;
  }

  /** POST-as-GET until `done(status)`; throws when `failed(status)`. */
  private async pollUntil(url: string, what: string, done: (status: string) => boolean, failed: (status: string) => boolean): Promise<any> {
    for (let wait = 5; ; wait = Math.min(wait * 2, 50)) {
      const reply = await this.post(url, "", what);
      const status = String(reply.json?.status);
      if (done(status)) return reply.json;
      if (failed(status)) throw new Error(`${what} ${url} became ${status}: ${JSON.stringify(reply.json?.error ?? reply.json?.challenges?.find((c: { error?: unknown }) => c.error)?.error ?? "")}`);
      await sleep(wait);
    }
  }

  private async csr(name: string): Promise<string> {
    const req = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${name}`,
      keys: this.certKeys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }])],
    });
    return Buffer.from(req.rawData).toString("base64url");
  }

  /** A JWS POST (`payload` "" is POST-as-GET); one retry on badNonce, with the nonce it brought. */
  private async post(url: string, payload: unknown, what: string, withJwk = false): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      if (!this.nonce) {
        const fresh = await this.call("HEAD", this.directory.newNonce);
        this.nonce = headerValue(fresh.headers["replay-nonce"]);
        if (!this.nonce) throw new Error(`HEAD ${this.directory.newNonce} gave no Replay-Nonce`);
      }
      const header = { alg: "ES256", nonce: this.nonce, url, ...(withJwk ? { jwk: this.jwk } : { kid: this.kid }) };
      this.nonce = undefined;
      const body = payload === "" ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
      const jws = await new FlattenedSign(body).setProtectedHeader(header).sign(this.accountKey);
      const reply = await this.call("POST", url, JSON.stringify(jws));
      this.nonce = headerValue(reply.headers["replay-nonce"]);
      if (reply.status < 400) return reply;
      const problem = (reply.json ?? {}) as { type?: string; detail?: string };
      if (problem.type === "urn:ietf:params:acme:error:badNonce" && attempt < 3) {
        this.stats.badNonceRetries++;
        continue;
      }
      throw new AcmeProblemError(reply.status, problem.type ? problem : { detail: reply.body.toString("utf8").slice(0, 200) }, `${what} ${url}`);
    }
  }
}

const headerValue = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done in ${ms / 1000} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
