// An ACME client spoken with jose directly against a test API, for the tests that send
// what client libraries never would: every header field, nonce and URL is the test's to set.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { FlattenedSign, calculateJwkThumbprint, type JWK } from "jose";
import { expect } from "vitest";
import type { ApiResponse, TestApi } from "./api.ts";
import { opensslCsr } from "./tools.ts";

export const ACME_ERROR = "urn:ietf:params:acme:error:";

export type Alg = "ES256" | "RS256" | "EdDSA";
export interface AccountKey {
  alg: Alg;
  privateKey: KeyObject;
  jwk: JWK;
}
export interface Account {
  key: AccountKey;
  kid: string;
}

export interface PostOptions {
  key: AccountKey;
  kid?: string | undefined;
  nonce?: string;
  /** header fields to add or override */
  header?: Record<string, unknown>;
}

export function newKey(alg: Alg = "ES256"): AccountKey {
  const pair = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : alg === "RS256" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ed25519");
  return { alg, privateKey: pair.privateKey, jwk: pair.publicKey.export({ format: "jwk" }) as JWK };
}

/** A CSR for these SANs, base64url DER as finalize takes it. */
export function finalizeCsr(sans: string[]): string {
  const { csrPem } = opensslCsr({ subject: `/CN=${sans[0]?.replace(/^[A-Z]+:/, "") ?? "x"}`, sans });
  return Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64url");
}

/** The ACME server of one provisioner of a test API. */
export class AcmeTestClient {
  constructor(
    private readonly t: TestApi,
    readonly provisioner: string,
    /** the source address every request comes from (any 127.x works on Linux) */
    private readonly localAddress?: string,
  ) {}

  get base(): string {
    return `${this.t.api.url}/acme/${this.provisioner}`;
  }

  async nonce(): Promise<string> {
    const res = await this.t.call("HEAD", `/acme/${this.provisioner}/new-nonce`, this.localAddress ? { localAddress: this.localAddress } : {});
    return String(res.headers["replay-nonce"]);
  }

  async jws(url: string, payload: unknown, o: PostOptions) {
    const header: Record<string, unknown> = { alg: o.key.alg, nonce: o.nonce ?? (await this.nonce()), url, ...(o.kid ? { kid: o.kid } : { jwk: o.key.jwk }), ...o.header };
    const body = payload === "" ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    return new FlattenedSign(body).setProtectedHeader(header as never).sign(o.key.privateKey);
  }

  /** POSTs a signed body to `url` (signed for `signedUrl` when given). */
  async post(url: string, payload: unknown, o: PostOptions & { signedUrl?: string }): Promise<ApiResponse> {
    return this.postRaw(url, JSON.stringify(await this.jws(o.signedUrl ?? url, payload, o)));
  }

  postRaw(url: string, body: string): Promise<ApiResponse> {
    const target = new URL(url);
    return this.t.call("POST", target.pathname + target.search, { raw: body, contentType: "application/jose+json", ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
  }

  async newAccount(key = newKey()): Promise<Account> {
    const res = await this.post(`${this.base}/new-account`, { termsOfServiceAgreed: true }, { key });
    expect(res.status, res.text).toBe(201);
    return { key, kid: String(res.headers.location) };
  }

  newOrder(account: Account, identifiers: Array<{ type: string; value: string }>, extra: Record<string, unknown> = {}): Promise<ApiResponse> {
    return this.post(`${this.base}/new-order`, { identifiers, ...extra }, account);
  }

  /** The order's first authorization's http-01 challenge. */
  async http01Challenge(account: Account, order: ApiResponse): Promise<{ authzUrl: string; url: string; token: string }> {
    const authzUrl = (order.json.authorizations as string[])[0] as string;
    const authz = await this.post(authzUrl, "", account);
    const challenge = (authz.json.challenges as Array<{ type: string; url: string; token: string }>).find((c) => c.type === "http-01");
    if (!challenge) throw new Error(`no http-01 challenge in ${authz.text}`);
    return { authzUrl, url: challenge.url, token: challenge.token };
  }

  /** Polls the authorization until it is no longer pending (or gives up after ~attempts × 50 ms). */
  async settled(account: Account, authzUrl: string, attempts = 200): Promise<Record<string, unknown>> {
    for (let i = 0; i < attempts; i++) {
      const now = await this.post(authzUrl, "", account);
      if (now.json.status !== "pending") return now.json;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`authorization ${authzUrl} still pending`);
  }

  /** Answers the order's http-01 challenges (right or wrong, through `answers`) and waits for every authorization to settle. */
  async validate(account: Account, order: ApiResponse, answers: Map<string, string>, answer: (token: string) => string): Promise<unknown[]> {
    const settled: unknown[] = [];
    for (const authzUrl of order.json.authorizations as string[]) {
      const authz = await this.post(authzUrl, "", account);
      const challenge = (authz.json.challenges as Array<{ type: string; url: string; token: string }>).find((c) => c.type === "http-01");
      if (!challenge) throw new Error(`no http-01 challenge in ${authz.text}`);
      answers.set(challenge.token, answer(challenge.token));
      const started = await this.post(challenge.url, {}, account);
      expect(started.status, started.text).toBe(200);
      settled.push(await this.settled(account, authzUrl));
    }
    return settled;
  }
}

/** An http-01 responder on host:port answering each token from `answers` (404 for others), or redirecting it to `redirects`' location. */
export async function http01Responder(host: string, port: number, answers: Map<string, string>, redirects = new Map<string, string>()): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const token = req.url?.split("/").pop() ?? "";
    const answer = answers.get(token);
    // only the challenge path itself is redirected, so a redirect may lead to /<prefix>/.well-known/… on this same server
    const location = req.url?.startsWith("/.well-known/") ? redirects.get(token) : undefined;
    if (location !== undefined) res.writeHead(302, { location }).end();
    else if (answer === undefined) res.writeHead(404).end();
    else res.writeHead(200, { "content-type": "text/plain" }).end(answer);
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return server;
}

/** The http-01 answer for a token: the key authorization of this account key. */
export async function keyAuthorization(token: string, account: Account): Promise<string> {
  return `${token}.${await calculateJwkThumbprint(account.key.jwk, "sha256")}`;
}
