// Abuse of the ACME server by requesters who hold nothing but throw-away accounts: one
// account stalling validation for everybody, throw-away accounts spending a provisioner's
// failure budget, http-01 redirects into the CA's own network, and requests crafted to
// leave rows behind or to slip past the JWS checks. Each case is a real request against
// the real API listener, validation against real sockets.
import { readdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlattenedSign } from "jose";
import { startTestApi, type TestApi } from "../support/api.ts";
import { ACME_ERROR as E, AcmeTestClient, finalizeCsr, http01Responder, keyAuthorization, newKey } from "../support/acme.ts";
import { TestDnsServer } from "../support/dns-server.ts";
import { freePort, opensslCsr, scratchDir, writeTemp } from "../support/tools.ts";

const FAILED_PER_PROVISIONER = 3;
const NEW_ACCOUNTS_PER_ADDRESS = 5;

let t: TestApi;
let dns: TestDnsServer;
const answers = new Map<string, string>();
const redirects = new Map<string, string>();
let port: number;
let responder: Server;
/** Answers every request by holding it open: a validation target that stalls. */
let staller: Server;
const stalled = new Set<Socket>();
/** An internal page the CA can reach and requesters must never read through it. */
let intranet: Server;
let intranetRequests = 0;

beforeAll(async () => {
  port = await freePort();
  responder = await http01Responder("127.0.0.1", port, answers, redirects);
  staller = createServer((req) => stalled.add(req.socket));
  await new Promise<void>((resolve) => staller.listen(port, "127.0.0.3", resolve));
  intranet = createServer((_req, res) => {
    intranetRequests++;
    res.writeHead(200).end("TOP SECRET payroll");
  });
  await new Promise<void>((resolve) => intranet.listen(port, "127.0.0.4", resolve));
  dns = await TestDnsServer.start();
  dns.add("ok.abuse.test", { type: "A", data: "127.0.0.1" });
  dns.add("moved.abuse.test", { type: "A", data: "127.0.0.1" });
  dns.add("stall.abuse.test", { type: "A", data: "127.0.0.3" });
  dns.add("intranet.corp", { type: "A", data: "127.0.0.4" });
  dns.add("metadata.abuse.test", { type: "A", data: "169.254.169.254" });
  t = await startTestApi({
    env: {
      PKI_ACME_HTTP01_PORT: String(port),
      PKI_ACME_RESOLVER: dns.address,
      PKI_ACME_FAILED_VALIDATIONS_PER_PROVISIONER_HOUR: String(FAILED_PER_PROVISIONER),
      PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR: String(NEW_ACCOUNTS_PER_ADDRESS),
    },
  });
  for (const name of ["flood", "budget", "misc"]) {
    const created = await t.call("POST", "/v1/provisioners", {
      token: t.ca.adminToken,
      body: { name, type: "acme", profiles: ["server"], names: ["IP:127.0.0.0/8", "DNS:.abuse.test"], maxTtlSeconds: 86400 },
    });
    expect(created.status, created.text).toBe(201);
  }
}, 120_000);

afterAll(async () => {
  for (const socket of stalled) socket.destroy();
  for (const server of [responder, staller, intranet]) await new Promise<void>((resolve) => server?.close(() => resolve()));
  await dns?.close();
  await t?.stop();
});

/** Each test makes its accounts from an address of its own, so the per-address account limit is the limit test's alone. */
const client = (provisioner: string, source: string) => new AcmeTestClient(t, provisioner, source);

describe("validation is shared fairly", () => {
  it("an account whose targets stall is refused past its own share, while another account's validation goes through", async () => {
    const acme = client("flood", "127.0.1.1");
    const attacker = await acme.newAccount();
    const statuses: number[] = [];
    const refusals: string[] = [];
    for (let i = 0; i < 24; i++) {
      const order = await acme.newOrder(attacker, [{ type: "dns", value: "stall.abuse.test" }]);
      expect(order.status, order.text).toBe(201);
      const { url } = await acme.http01Challenge(attacker, order);
      const res = await acme.post(url, {}, attacker);
      statuses.push(res.status);
      if (res.status === 429) refusals.push(`${res.json.type} ${res.json.detail}`);
    }
    // 16 validations running or waiting per account; the rest refused, to this account only
    expect(statuses.filter((s) => s === 200)).toHaveLength(16);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8);
    expect(refusals[0]).toContain(`${E}rateLimited`);
    expect(refusals[0]).toContain("this account already has 16 validations");

    const victim = await acme.newAccount();
    const order = await acme.newOrder(victim, [{ type: "dns", value: "ok.abuse.test" }]);
    const { authzUrl, url, token } = await acme.http01Challenge(victim, order);
    answers.set(token, await keyAuthorization(token, victim));
    expect((await acme.post(url, {}, victim)).status).toBe(200);
    const authz = await acme.settled(victim, authzUrl);
    expect(authz.status).toBe("valid");
    // and the attacker's validations were all still stalled meanwhile: the victim did not wait for them
    const stillProcessing = await t.ca.inventory.sql.query<{ n: string }>(
      `SELECT count(*) AS n FROM acme_challenges c JOIN acme_accounts a ON a.id = c.account_id WHERE c.status = 'processing' AND a.id = $1`,
      [attacker.kid.split("/").pop()],
    );
    expect(Number(stillProcessing[0]?.n)).toBe(16);
  });
});

describe("the provisioner's failure budget refuses the accounts that fail, not the ones that succeed", () => {
  it("spent by one account's failures, it stops that account and lets a clean account validate", async () => {
    const acme = client("budget", "127.0.2.1");
    const failing = await acme.newAccount();
    const fail = async (account: typeof failing) => {
      const order = await acme.newOrder(account, [{ type: "dns", value: "ok.abuse.test" }]);
      const { authzUrl, url } = await acme.http01Challenge(account, order);
      const res = await acme.post(url, {}, account);
      if (res.status !== 200) return res;
      expect((await acme.settled(account, authzUrl)).status).toBe("invalid");
      return res;
    };
    for (let i = 0; i < FAILED_PER_PROVISIONER; i++) expect((await fail(failing)).status).toBe(200);
    const refused = await fail(failing);
    expect(refused.status).toBe(429);
    expect(refused.json.type).toBe(`${E}rateLimited`);
    expect(refused.json.detail).toContain(`limit of ${FAILED_PER_PROVISIONER} failed validations per hour`);

    const clean = await acme.newAccount();
    const order = await acme.newOrder(clean, [{ type: "dns", value: "ok.abuse.test" }]);
    const { authzUrl, url, token } = await acme.http01Challenge(clean, order);
    answers.set(token, await keyAuthorization(token, clean));
    expect((await acme.post(url, {}, clean)).status).toBe(200);
    expect((await acme.settled(clean, authzUrl)).status).toBe("valid");
  });
});

describe("http-01 stays on the requester's own names", () => {
  it("a redirect to an internal host is not followed and nothing it could have answered is repeated", async () => {
    const acme = client("misc", "127.0.3.1");
    const account = await acme.newAccount();
    const order = await acme.newOrder(account, [{ type: "dns", value: "ok.abuse.test" }]);
    const { authzUrl, url, token } = await acme.http01Challenge(account, order);
    // the requester's own target answers with a redirect into the CA's network
    redirects.set(token, `http://intranet.corp:${port}/payroll?all=1`);
    expect((await acme.post(url, {}, account)).status).toBe(200);
    const authz = await acme.settled(account, authzUrl);
    expect(authz.status).toBe("invalid");
    const detail = JSON.stringify(authz);
    expect(detail).not.toMatch(/TOP SECRET|payroll|all=1/);
    expect(detail).toContain("refused to follow a 302 redirect to http://intranet.corp");
    expect(intranetRequests).toBe(0);
  });

  it("a redirect to another name the provisioner issues for, keeping the challenge path, is followed", async () => {
    const acme = client("misc", "127.0.3.3");
    const account = await acme.newAccount();
    const order = await acme.newOrder(account, [{ type: "dns", value: "ok.abuse.test" }]);
    const { authzUrl, url, token } = await acme.http01Challenge(account, order);
    redirects.set(token, `http://moved.abuse.test:${port}/moved/.well-known/acme-challenge/${token}`);
    answers.set(token, await keyAuthorization(token, account));
    expect((await acme.post(url, {}, account)).status).toBe(200);
    expect((await acme.settled(account, authzUrl)).status).toBe("valid");
  });

  it("a name that resolves to the metadata service is never connected to", async () => {
    const acme = client("misc", "127.0.3.2");
    const account = await acme.newAccount();
    const order = await acme.newOrder(account, [{ type: "dns", value: "metadata.abuse.test" }]);
    const { authzUrl, url } = await acme.http01Challenge(account, order);
    expect((await acme.post(url, {}, account)).status).toBe(200);
    const authz = (await acme.settled(account, authzUrl)) as { status: string; challenges: Array<{ error?: { type: string; detail: string } }> };
    expect(authz.status).toBe("invalid");
    const error = authz.challenges.find((c) => c.error)?.error;
    expect(error?.type).toBe(`${E}connection`);
    expect(error?.detail).toContain("in a network this CA does not connect to");
    expect(error?.detail).not.toContain("169.254");
  });
});

describe("new accounts are limited per source address", () => {
  it("past the limit a new key is rateLimited with Retry-After, while an existing account is still found and other addresses go on", async () => {
    const acme = client("misc", "127.0.4.1");
    const first = await acme.newAccount();
    for (let i = 1; i < NEW_ACCOUNTS_PER_ADDRESS; i++) await acme.newAccount();
    const refused = await acme.post(`${acme.base}/new-account`, { termsOfServiceAgreed: true }, { key: newKey() });
    expect(refused.status).toBe(429);
    expect(refused.json.type).toBe(`${E}rateLimited`);
    expect(refused.json.detail).toContain(`address 127.0.4.1 has reached its limit of ${NEW_ACCOUNTS_PER_ADDRESS} new accounts per hour`);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    const existing = await acme.post(`${acme.base}/new-account`, { onlyReturnExisting: true }, { key: first.key });
    expect(existing.status, existing.text).toBe(200);
    await client("misc", "127.0.4.2").newAccount();
  });
});

describe("requests that leave nothing behind or slip past the checks", () => {
  const acme = () => client("misc", "127.0.5.1");

  it("new-nonce writes nothing, and neither does a request whose signature does not verify", async () => {
    const count = async () =>
      (await t.ca.inventory.sql.query<{ nonces: string; audit: string }>(`SELECT (SELECT count(*) FROM acme_spent_nonces) AS nonces, (SELECT count(*) FROM audit_events) AS audit`))[0];
    const before = await count();
    const c = acme();
    for (let i = 0; i < 50; i++) expect((await t.call(i % 2 ? "HEAD" : "GET", "/acme/misc/new-nonce")).headers["replay-nonce"]).toBeTruthy();
    const key = newKey();
    const forged = await c.jws(`${c.base}/new-account`, { termsOfServiceAgreed: true }, { key });
    for (let i = 0; i < 10; i++) {
      const other = await c.jws(`${c.base}/new-account`, { termsOfServiceAgreed: true }, { key: newKey() });
      const res = await c.postRaw(`${c.base}/new-account`, JSON.stringify({ ...forged, protected: other.protected }));
      expect(res.status).toBe(400);
      expect(res.json.detail).toContain("signature does not verify");
    }
    expect(await count()).toEqual(before);
    // a signed request uses its nonce up: one row, and the same nonce again is badNonce
    const nonce = await c.nonce();
    expect((await c.post(`${c.base}/new-account`, { onlyReturnExisting: true }, { key, nonce })).json.type).toBe(`${E}accountDoesNotExist`);
    expect(Number((await count())?.nonces)).toBe(Number(before?.nonces) + 1);
    expect((await c.post(`${c.base}/new-account`, { onlyReturnExisting: true }, { key, nonce })).json.type).toBe(`${E}badNonce`);
  });

  it("the JWS url must be the request URL exactly, query included; the orders list's next link verifies", async () => {
    const c = acme();
    const account = await c.newAccount();
    const res = await c.post(`${c.base}/new-order?x=1`, { identifiers: [{ type: "ip", value: "127.0.0.1" }] }, { ...account, signedUrl: `${c.base}/new-order` });
    expect(res.status).toBe(403);
    expect(res.json.type).toBe(`${E}unauthorized`);
    const next = `${account.kid}/orders?before=${encodeURIComponent(new Date().toISOString())}`;
    const page = await c.post(next, "", account);
    expect(page.status, page.text).toBe(200);
    expect(page.json.orders).toEqual([]);
  });

  it("an unencoded payload (b64: false) and crit are malformed", async () => {
    const c = acme();
    const key = newKey();
    const url = `${c.base}/new-account`;
    const unencoded = await new FlattenedSign(new TextEncoder().encode("{}"))
      .setProtectedHeader({ alg: "ES256", b64: false, crit: ["b64"], nonce: await c.nonce(), url, jwk: key.jwk } as never)
      .sign(key.privateKey);
    const res = await c.postRaw(url, JSON.stringify(unencoded));
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}malformed`);
    expect(res.json.detail).toContain("'b64'");
  });

  it("revokeCert with bytes after the certificate is malformed", async () => {
    const c = acme();
    const account = await c.newAccount();
    const der = Buffer.from(t.rootPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const res = await c.post(`${c.base}/revoke-cert`, { certificate: Buffer.concat([der, Buffer.from("trailing")]).toString("base64url") }, account);
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}malformed`);
    expect(res.json.detail).toContain("bytes after the DER certificate");
  });

  it("an IPv6 identifier with a zone ID is rejectedIdentifier, not a server error", async () => {
    const c = acme();
    const account = await c.newAccount();
    const res = await c.newOrder(account, [{ type: "ip", value: "fe80::1%eth0" }]);
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}rejectedIdentifier`);
    expect(res.json.detail).toContain("zone ID");
  });

  it("finalize with a CSR whose key is the account key is badCSR", async () => {
    const c = acme();
    const account = await c.newAccount();
    const order = await c.newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    const { authzUrl, url, token } = await c.http01Challenge(account, order);
    answers.set(token, await keyAuthorization(token, account));
    await c.post(url, {}, account);
    expect((await c.settled(account, authzUrl)).status).toBe("valid");
    const keyFile = writeTemp("account.pem", account.key.privateKey.export({ type: "pkcs8", format: "pem" }), scratchDir());
    const { csrDer } = opensslCsr({ keyFile, subject: "/CN=127.0.0.1", sans: ["IP:127.0.0.1"] });
    const res = await c.post(order.json.finalize, { csr: csrDer.toString("base64url") }, account);
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}badCSR`);
    expect(res.json.detail).toContain("account key");
    // a CSR with its own key still finalizes the same order
    const done = await c.post(order.json.finalize, { csr: finalizeCsr(["IP:127.0.0.1"]) }, account);
    expect(done.json.status, done.text).toBe("valid");
  });
});

describe("validation runs where no key is", () => {
  /** Processes whose parent is this one and whose command line names the validator. */
  const validatorChildren = () =>
    readdirSync("/proc")
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
          return parent === process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("acme-validator");
        } catch {
          return false;
        }
      });

  it("the validator is a child process with no PKCS#11 module loaded and no PIN, admin token or data-dir secret in its environment", async () => {
    // the validations above started it
    const [pid, ...others] = validatorChildren();
    expect(pid, "a validator child process").toBeDefined();
    expect(others).toEqual([]);
    const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
    // this test's own process runs the API, which holds the issuing token: the check can tell
    expect(readFileSync("/proc/self/maps", "utf8")).toMatch(/softhsm|pkcs11/i);
    expect(maps).not.toMatch(/softhsm|pkcs11/i);
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const names = environ.map((entry) => entry.split("=")[0]);
    expect(names).not.toContain("PKI_ISSUING_PIN");
    expect(names.filter((name) => /PIN|TOKEN|SOFTHSM|PKCS11/.test(name ?? ""))).toEqual([]);
    expect(names).toContain("PKI_ACME_RESOLVER");
  });
});
