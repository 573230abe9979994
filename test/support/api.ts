// The issuing API over real HTTPS: a test CA, the API listener on an ephemeral port, and
// a Node https client that trusts only this CA's root and can present a client certificate.
import { request as httpsRequest } from "node:https";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "@pki/logger";
import { startApi, type ApiServer, type StartApiOptions } from "@pki/api";
import type { Clock } from "@pki/authority";
import { startTestCa, type TestCa, type TestEnvOptions } from "./harness.ts";
import { childEnv, testSettings } from "./settings.ts";

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** parsed JSON when the answer is JSON or problem+json */
  json: any;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** sent as is, with `contentType` */
  raw?: Buffer | string;
  contentType?: string;
  /** client certificate (PEM, leaf first) and key for mTLS */
  cert?: string;
  key?: string;
  headers?: Record<string, string>;
  /** the source address to connect from (any 127.x works on Linux), for per-source limits */
  localAddress?: string;
}

export interface TestApi {
  ca: TestCa;
  api: ApiServer;
  rootPem: string;
  call(method: string, urlPath: string, options?: RequestOptions): Promise<ApiResponse>;
  /** rows in the certificates table, for "nothing was stored" checks */
  certificateRows(): Promise<number>;
  stop(): Promise<void>;
}

export function callApi(baseUrl: string, rootPem: string, method: string, urlPath: string, options: RequestOptions = {}): Promise<ApiResponse> {
  const url = new URL(urlPath, baseUrl);
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) {
    headers["content-type"] = options.contentType ?? "application/json";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method, headers, ca: rootPem, cert: options.cert, key: options.key, agent: false, ...(options.localAddress ? { localAddress: options.localAddress } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const type = String(res.headers["content-type"] ?? "");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: /json/.test(type) && text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function startTestApi(options: TestEnvOptions & StartApiOptions & { clock?: Clock } = {}): Promise<TestApi> {
  const ca = await startTestCa(options);
  const log = createLogger(testSettings.logLevel, "pki-api-test");
  let api: ApiServer;
  try {
    api = await startApi(ca.runtime, log, { port: 0, host: "127.0.0.1", ...options });
  } catch (error) {
    await ca.cleanup();
    throw error;
  }
  const rootPem = readFileSync(path.join(ca.dataDir, "root.pem"), "utf8");
  return {
    ca,
    api,
    rootPem,
    call: (method, urlPath, o) => callApi(api.url, rootPem, method, urlPath, o),
    certificateRows: async () => Number((await ca.inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates"))[0]!.n),
    stop: async () => {
      await api.stop();
      await ca.cleanup();
    },
  };
}

/** Creates a provisioner through the API as the admin and returns its token. */
export async function addProvisioner(t: TestApi, spec: { name: string; profiles?: string[]; names: string[]; maxTtlSeconds?: number }): Promise<string> {
  const res = await t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { profiles: ["mtls"], maxTtlSeconds: 86400, ...spec } });
  if (res.status !== 201) throw new Error(`creating provisioner ${spec.name}: ${res.status} ${res.text}`);
  return res.json.token as string;
}

/**
 * A child process run without blocking the event loop: the API under test lives in this
 * process, so curl or openssl talking to it must not be run with spawnSync.
 */
export function runAsync(command: string, args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: childEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(options.input);
  });
}

/** A clock tests move forward by hand. */
export class TravelClock implements Clock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}
