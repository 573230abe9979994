// ACME protocol edges, spoken with jose directly against the real API listener: each
// request a client library would never send gets the RFC 8555 problem it should, and the
// happy path (IP identifier per RFC 8738, http-01 answered by this test) issues,
// downloads, reports renewal information and revokes.
import type { Server } from "node:http";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { FlattenedSign, calculateJwkThumbprint, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi, type ApiResponse } from "../support/api.ts";
import { ACME_ERROR as E, type Account, type AccountKey, AcmeTestClient, finalizeCsr as csrFor, http01Responder, newKey, type PostOptions } from "../support/acme.ts";
import { freePort, opensslCsr } from "../support/tools.ts";

let t: TestApi;
let acme: AcmeTestClient;
let http01: Server;
let http01Second: Server;
const answers = new Map<string, string>();
const ORDERS_PER_ACCOUNT_HOUR = 12;

beforeAll(async () => {
  const port = await freePort();
  http01 = await http01Responder("127.0.0.1", port, answers);
  // a second address, for orders of two identifiers
  http01Second = await http01Responder("127.0.0.2", port, answers);
  t = await startTestApi({ env: { PKI_ACME_HTTP01_PORT: String(port), PKI_ACME_ORDERS_PER_ACCOUNT_HOUR: String(ORDERS_PER_ACCOUNT_HOUR), PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR: "1000" } });
  acme = new AcmeTestClient(t, "proto");
  const created = await t.call("POST", "/v1/provisioners", {
    token: t.ca.adminToken,
    body: { name: "proto", type: "acme", profiles: ["server", "mtls"], names: ["IP:127.0.0.0/8", "DNS:.proto.test"], maxTtlSeconds: 86400 },
  });
  expect(created.status, created.text).toBe(201);
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => http01?.close(() => resolve()));
  await new Promise<void>((resolve) => http01Second?.close(() => resolve()));
  await t?.stop();
});

const base = () => acme.base;
const nonce = () => acme.nonce();
const jws = (url: string, payload: unknown, o: PostOptions) => acme.jws(url, payload, o);
const post = (url: string, payload: unknown, o: PostOptions) => acme.post(url, payload, o);
const newAccount = (key?: AccountKey) => acme.newAccount(key);
const newOrder = (account: Account, identifiers: Array<{ type: string; value: string }>, extra: Record<string, unknown> = {}) => acme.newOrder(account, identifiers, extra);
const validate = (account: Account, order: ApiResponse, answer: (token: string) => string) => acme.validate(account, order, answers, answer);

describe("ACME protocol", () => {
  it("the directory lists the endpoints, renewalInfo and the provisioner's profiles", async () => {
    const dir = await t.call("GET", "/acme/proto/directory");
    expect(dir.status).toBe(200);
    expect(dir.json.newAccount).toBe(`${base()}/new-account`);
    expect(dir.json.renewalInfo).toBe(`${base()}/renewal-info`);
    expect(Object.keys(dir.json.meta.profiles).sort()).toEqual(["mtls", "server"]);
    expect((await t.call("GET", "/acme/nope/directory")).status).toBe(404);
  });

  it("a replayed nonce is badNonce, with a fresh Replay-Nonce to retry with", async () => {
    const key = newKey();
    const used = await nonce();
    const first = await post(`${base()}/new-account`, { termsOfServiceAgreed: true }, { key, nonce: used });
    expect(first.status, first.text).toBe(201);
    const replay = await post(`${base()}/new-account`, { termsOfServiceAgreed: true }, { key, nonce: used });
    expect(replay.status).toBe(400);
    expect(replay.json.type).toBe(`${E}badNonce`);
    expect(replay.headers["replay-nonce"]).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(replay.headers["replay-nonce"]).not.toBe(used);
  });

  it("an oversized body is a 413 problem; contacts other than one plain mailto: are refused", async () => {
    const big = await t.call("POST", "/acme/proto/new-account", { raw: "x".repeat(70 * 1024), contentType: "application/jose+json" });
    expect(big.status).toBe(413);
    expect(big.json.type).toBe(`${E}malformed`);
    const tel = await post(`${base()}/new-account`, { contact: ["tel:+1555"] }, { key: newKey() });
    expect(tel.json.type).toBe(`${E}unsupportedContact`);
    const two = await post(`${base()}/new-account`, { contact: ["mailto:a@proto.test,b@proto.test"] }, { key: newKey() });
    expect(two.json.type).toBe(`${E}invalidContact`);
    const many = await post(`${base()}/new-account`, { contact: Array.from({ length: 5 }, (_, i) => `mailto:o${i}@proto.test`) }, { key: newKey() });
    expect(many.json.type).toBe(`${E}invalidContact`);
    const plain = await t.call("POST", "/acme/proto/new-account", { body: {} });
    expect(plain.status).toBe(415);
  });

  it("a JWS whose url is not the request's URL is unauthorized", async () => {
    const key = newKey();
    const signed = await jws(`${base()}/new-order`, { termsOfServiceAgreed: true }, { key });
    const res = await t.call("POST", "/acme/proto/new-account", { raw: JSON.stringify(signed), contentType: "application/jose+json" });
    expect(res.status).toBe(403);
    expect(res.json.type).toBe(`${E}unauthorized`);
    expect(res.json.detail).toContain("is not the URL this request was sent to");
  });

  it("kid and jwk together are malformed", async () => {
    const account = await newAccount();
    const res = await post(`${base()}/new-order`, { identifiers: [{ type: "ip", value: "127.0.0.1" }] }, { ...account, header: { jwk: account.key.jwk } });
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}malformed`);
    expect(res.json.detail).toContain("exactly one of 'jwk' and 'kid'");
  });

  it("HS256 and none are badSignatureAlgorithm", async () => {
    const account = await newAccount();
    const hmac = await new FlattenedSign(new TextEncoder().encode("{}"))
      .setProtectedHeader({ alg: "HS256", nonce: await nonce(), url: `${base()}/new-order`, kid: account.kid } as never)
      .sign(new Uint8Array(32).fill(7));
    const hs = await t.call("POST", "/acme/proto/new-order", { raw: JSON.stringify(hmac), contentType: "application/jose+json" });
    expect(hs.status).toBe(400);
    expect(hs.json.type).toBe(`${E}badSignatureAlgorithm`);
    expect(hs.json.algorithms).toContain("ES256");
    const header = Buffer.from(JSON.stringify({ alg: "none", nonce: await nonce(), url: `${base()}/new-order`, kid: account.kid })).toString("base64url");
    const none = await t.call("POST", "/acme/proto/new-order", {
      raw: JSON.stringify({ protected: header, payload: Buffer.from("{}").toString("base64url"), signature: "" }),
      contentType: "application/jose+json",
    });
    expect(none.json.type).toBe(`${E}badSignatureAlgorithm`);
  });

  it("EdDSA and RS256 account keys are accepted; onlyReturnExisting for an unknown key is accountDoesNotExist", async () => {
    for (const alg of ["EdDSA", "RS256"] as const) {
      const account = await newAccount(newKey(alg));
      const again = await post(account.kid, "", account);
      expect(again.status, again.text).toBe(200);
      expect(again.json.status).toBe("valid");
    }
    const missing = await post(`${base()}/new-account`, { onlyReturnExisting: true }, { key: newKey() });
    expect(missing.status).toBe(400);
    expect(missing.json.type).toBe(`${E}accountDoesNotExist`);
  });

  it("finalize before the order is ready is orderNotReady", async () => {
    const account = await newAccount();
    const order = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    expect(order.status, order.text).toBe(201);
    const res = await post(order.json.finalize, { csr: csrFor(["IP:127.0.0.1"]) }, account);
    expect(res.status).toBe(403);
    expect(res.json.type).toBe(`${E}orderNotReady`);
  });

  it("a wrong challenge response makes the challenge, authorization and order invalid, with the problem", async () => {
    const account = await newAccount();
    const order = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    const [authz] = (await validate(account, order, () => "not-the-key-authorization")) as Array<{
      status: string;
      challenges: Array<{ type: string; status: string; error?: { type: string; detail: string } }>;
    }>;
    expect(authz!.status).toBe("invalid");
    const challenge = authz!.challenges.find((c) => c.type === "http-01")!;
    expect(challenge.status).toBe("invalid");
    expect(challenge.error!.type).toBe(`${E}incorrectResponse`);
    const after = await post(order.headers.location as string, "", account);
    expect(after.json.status).toBe("invalid");
  });
});

describe("ACME issuance", () => {
  it("an order of two identifiers is ready only once both authorizations are valid, and is issued for both", async () => {
    const account = await newAccount();
    const order = await newOrder(account, [
      { type: "ip", value: "127.0.0.2" },
      { type: "ip", value: "127.0.0.1" },
    ]);
    expect(order.status, order.text).toBe(201);
    const orderUrl = order.headers.location as string;
    const authzUrls = order.json.authorizations as string[];
    expect(authzUrls).toHaveLength(2);
    // listed the same way when the order is read again
    expect((await post(orderUrl, "", account)).json.authorizations).toEqual(authzUrls);
    const thumb = await calculateJwkThumbprint(account.key.jwk, "sha256");
    // one authorization at a time: the order must wait for the second
    const only = (url: string | undefined) => ({ ...order, json: { ...order.json, authorizations: [url] } }) as ApiResponse;
    const [first] = (await validate(account, only(authzUrls[0]), (token) => `${token}.${thumb}`)) as Array<{ status: string }>;
    expect(first!.status).toBe("valid");
    expect((await post(orderUrl, "", account)).json.status).toBe("pending");
    const [second] = (await validate(account, only(authzUrls[1]), (token) => `${token}.${thumb}`)) as Array<{ status: string }>;
    expect(second!.status).toBe("valid");
    expect((await post(orderUrl, "", account)).json.status).toBe("ready");
    const done = await post(order.json.finalize, { csr: csrFor(["IP:127.0.0.1", "IP:127.0.0.2"]) }, account);
    expect(done.status, done.text).toBe(200);
    expect(done.json.status).toBe("valid");
    expect(done.json.authorizations).toEqual(authzUrls);
  });

  it("badCSR for other names; then issue, download, renewal info, revoke", async () => {
    const account = await newAccount();
    const ipOrder = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }], { profile: "mtls" });
    const thumb = await calculateJwkThumbprint(account.key.jwk, "sha256");
    const [authz] = (await validate(account, ipOrder, (token) => `${token}.${thumb}`)) as Array<{ status: string }>;
    expect(authz!.status).toBe("valid");
    const orderUrl = ipOrder.headers.location as string;
    expect((await post(orderUrl, "", account)).json.status).toBe("ready");

    const wrong = await post(ipOrder.json.finalize, { csr: csrFor(["IP:127.0.0.1", "IP:127.0.0.5"]) }, account);
    expect(wrong.status).toBe(400);
    expect(wrong.json.type).toBe(`${E}badCSR`);
    expect(wrong.json.detail).toContain("not in the order: IP:127.0.0.5");
    expect((await post(orderUrl, "", account)).json.status).toBe("ready");

    const { csrPem, keyPem } = opensslCsr({ subject: "/CN=127.0.0.1", sans: ["IP:127.0.0.1"] });
    const csr = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64url");
    const done = await post(ipOrder.json.finalize, { csr }, account);
    expect(done.status, done.text).toBe(200);
    expect(done.json.status).toBe("valid");
    const download = await post(done.json.certificate, "", account);
    expect(download.status).toBe(200);
    expect(download.headers["content-type"]).toContain("application/pem-certificate-chain");
    const blocks = download.text.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(blocks).toHaveLength(2);

    // the inventory row names the account
    const serial = String(done.json.certificate).split("/").pop()!;
    const row = await t.call("GET", `/v1/certificates/${serial}`, { token: t.ca.adminToken });
    expect(row.json.requester).toBe(`acme:proto/${account.kid.split("/").pop()}`);
    expect(row.json.profile).toBe("mtls");
    const byAccount = await t.call("GET", `/v1/certificates?acmeAccount=${account.kid.split("/").pop()}`, { token: t.ca.adminToken });
    expect(byAccount.json.items.map((i: { serial: string }) => i.serial)).toEqual([serial]);

    // RFC 9773 CertID: base64url(AKI) . base64url(serial)
    const leaf = new X509Certificate(download.text.split(/(?<=-----END CERTIFICATE-----)/)[0]!);
    const issuer = new X509Certificate(download.text.split(/(?<=-----END CERTIFICATE-----)/)[1]!.trim());
    expect(leaf.checkIssued(issuer)).toBe(true);
    const certId = `${Buffer.from(t.ca.runtime.keyring.get(row.json.issuerId)!.facts.subjectKeyId).toString("base64url")}.${Buffer.from(serial, "hex").toString("base64url")}`;
    const before = await t.call("GET", `/acme/proto/renewal-info/${certId}`);
    expect(before.status, before.text).toBe(200);
    expect(Date.parse(before.json.suggestedWindow.start)).toBeGreaterThan(Date.now());
    expect(before.headers["retry-after"]).toBeDefined();

    // RFC 9773 replaces: the new certificate is recorded as the old one's successor, once
    const renewal = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }], { profile: "mtls", replaces: certId });
    expect(renewal.status, renewal.text).toBe(201);
    expect(renewal.json.replaces).toBe(serial);
    const twice = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }], { replaces: certId });
    expect(twice.status).toBe(409);
    expect(twice.json.type).toBe(`${E}alreadyReplaced`);
    await validate(account, renewal, (token) => `${token}.${thumb}`);
    const renewed = await post(renewal.json.finalize, { csr: csrFor(["IP:127.0.0.1"]) }, account);
    expect(renewed.json.status, renewed.text).toBe("valid");
    const successor = String(renewed.json.certificate).split("/").pop()!;
    expect((await t.call("GET", `/v1/certificates/${successor}`, { token: t.ca.adminToken })).json.predecessorSerial).toBe(serial);
    expect((await t.call("GET", `/v1/certificates/${serial}`, { token: t.ca.adminToken })).json.successorSerial).toBe(successor);

    // revoked by the certificate's own key (jwk), not the account
    const privateKey = createPrivateKey(keyPem);
    const certKey: AccountKey = { alg: "ES256", privateKey, jwk: createPublicKey(privateKey).export({ format: "jwk" }) as JWK };
    const revoked = await post(`${base()}/revoke-cert`, { certificate: Buffer.from(leaf.raw).toString("base64url"), reason: 1 }, { key: certKey });
    expect(revoked.status, revoked.text).toBe(200);
    const again = await post(`${base()}/revoke-cert`, { certificate: Buffer.from(leaf.raw).toString("base64url") }, account);
    expect(again.json.type).toBe(`${E}alreadyRevoked`);
    const after = await t.call("GET", `/acme/proto/renewal-info/${certId}`);
    expect(Date.parse(after.json.suggestedWindow.end)).toBeLessThanOrEqual(Date.now());
  });

  it("revokeCert signed by an unrelated account is unauthorized", async () => {
    const owner = await newAccount();
    const order = await newOrder(owner, [{ type: "ip", value: "127.0.0.1" }]);
    const thumb = await calculateJwkThumbprint(owner.key.jwk, "sha256");
    await validate(owner, order, (token) => `${token}.${thumb}`);
    const done = await post(order.json.finalize, { csr: csrFor(["IP:127.0.0.1"]) }, owner);
    expect(done.json.status, done.text).toBe("valid");
    const pem = (await post(done.json.certificate, "", owner)).text.split(/(?<=-----END CERTIFICATE-----)/)[0]!;
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const stranger = await newAccount();
    const res = await post(`${base()}/revoke-cert`, { certificate: der.toString("base64url") }, stranger);
    expect(res.status).toBe(403);
    expect(res.json.type).toBe(`${E}unauthorized`);
  });

  it("a key change to a key another account holds is conflict; to a fresh key it works", async () => {
    const account = await newAccount();
    const other = await newAccount();
    const change = async (newKeyOf: AccountKey) => {
      const url = `${base()}/key-change`;
      const inner = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: account.kid, oldKey: account.key.jwk })))
        .setProtectedHeader({ alg: newKeyOf.alg, jwk: newKeyOf.jwk, url } as never)
        .sign(newKeyOf.privateKey);
      return post(url, inner, account);
    };
    const conflict = await change(other.key);
    expect(conflict.status).toBe(409);
    expect(conflict.json.type).toBe(`${E}conflict`);
    expect(conflict.headers.location).toBe(other.kid);
    const fresh = newKey("EdDSA");
    const ok = await change(fresh);
    expect(ok.status, ok.text).toBe(200);
    const withNew = await post(account.kid, "", { key: fresh, kid: account.kid });
    expect(withNew.status, withNew.text).toBe(200);
    const withOld = await post(account.kid, "", account);
    expect(withOld.status).toBe(400);
  });

  it("names outside the patterns are rejectedIdentifier with a subproblem each; wildcards get only dns-01; unknown profiles are invalidProfile", async () => {
    const account = await newAccount();
    const res = await newOrder(account, [
      { type: "dns", value: "a.elsewhere.test" },
      { type: "ip", value: "10.1.2.3" },
      { type: "dns", value: "ok.proto.test" },
    ]);
    expect(res.status).toBe(400);
    expect(res.json.type).toBe(`${E}rejectedIdentifier`);
    expect(res.json.subproblems.map((s: { identifier: { value: string } }) => s.identifier.value).sort()).toEqual(["10.1.2.3", "a.elsewhere.test"]);
    const wildcard = await newOrder(account, [{ type: "dns", value: "*.proto.test" }]);
    expect(wildcard.status, wildcard.text).toBe(201);
    const authz = await post(wildcard.json.authorizations[0], "", account);
    expect(authz.json.wildcard).toBe(true);
    expect(authz.json.identifier.value).toBe("proto.test");
    expect(authz.json.challenges.map((c: { type: string }) => c.type)).toEqual(["dns-01"]);
    const profile = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }], { profile: "client" });
    expect(profile.json.type).toBe(`${E}invalidProfile`);
  });

  it("an account over its orders-per-hour limit is rateLimited with Retry-After", async () => {
    const account = await newAccount();
    for (let i = 0; i < ORDERS_PER_ACCOUNT_HOUR; i++) expect((await newOrder(account, [{ type: "ip", value: "127.0.0.1" }])).status).toBe(201);
    const limited = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    expect(limited.status).toBe(429);
    expect(limited.json.type).toBe(`${E}rateLimited`);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("a validation lost with its process (still processing long after its deadline) fails the authorization instead of hanging", async () => {
    const account = await newAccount();
    const order = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    const authzUrl = order.json.authorizations[0] as string;
    const challengeId = String((await post(authzUrl, "", account)).json.challenges[0].url)
      .split("/")
      .pop();
    // what a crash mid-validation leaves behind: processing, started an hour ago
    await t.ca.inventory.sql.query(`UPDATE acme_challenges SET status = 'processing', validated_at = now() - interval '1 hour' WHERE id = $1`, [challengeId]);
    const authz = await post(authzUrl, "", account);
    expect(authz.json.status).toBe("invalid");
    expect((await post(order.headers.location as string, "", account)).json.status).toBe("invalid");
  });

  it("a deactivated account can do nothing more", async () => {
    const account = await newAccount();
    const off = await post(account.kid, { status: "deactivated" }, account);
    expect(off.status, off.text).toBe(200);
    expect(off.json.status).toBe("deactivated");
    const res = await newOrder(account, [{ type: "ip", value: "127.0.0.1" }]);
    expect(res.status).toBe(403);
    expect(res.json.type).toBe(`${E}unauthorized`);
  });
});
