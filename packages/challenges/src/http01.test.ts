import { once } from "node:events";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ChallengeSettings, type ConnectAttempt, validateChallenge } from "./index.ts";
import { CHALLENGE_PATH, ChallengeHttpServer, KEY_AUTHORIZATION, settingsFor, TestDnsServer, TOKEN } from "./test-fixtures.ts";

let dns: TestDnsServer;
let target: ChallengeHttpServer;
/** Listens on a port validation must never reach; any connection to it is a failure. */
let forbidden: ChallengeHttpServer;
let settings: ChallengeSettings;

const http01 = (value: string, type: "dns" | "ip" = "dns", overrides: Partial<ChallengeSettings> = {}) =>
  validateChallenge({ type: "http-01", identifier: { type, value }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION }, { ...settings, ...overrides });

beforeAll(async () => {
  dns = await TestDnsServer.start();
  target = await ChallengeHttpServer.start();
  forbidden = await ChallengeHttpServer.start();
  // tls-alpn-01's port is the other allowed one; nothing listens there in this file.
  settings = settingsFor(dns, { http01Port: target.port, tlsAlpn01Port: 1 });
});
afterAll(async () => {
  await Promise.all([dns.close(), target.close(), forbidden.close()]);
});
beforeEach(() => {
  dns.clear();
  target.reset();
  forbidden.reset();
  dns.add("site.test", { type: "A", data: "127.0.0.1" }).add("other.test", { type: "A", data: "127.0.0.1" });
});

const serve = (path: string, status: number, body: string, headers: Record<string, string> = {}) => target.handlers.set(path, (_request, response) => response.writeHead(status, headers).end(body));
const redirect = (path: string, location: string, status = 302) => serve(path, status, "", { location });

describe("http-01", () => {
  it("accepts the key authorization (trailing whitespace ignored), connecting to the resolved address with the name as Host", async () => {
    serve(CHALLENGE_PATH, 200, `${KEY_AUTHORIZATION}\r\n\t `);
    expect(await http01("site.test")).toEqual({ ok: true });
    expect(target.requests).toEqual([{ host: `site.test:${target.port}`, path: CHALLENGE_PATH, remote: "127.0.0.1" }]);
    expect(dns.queryCount("site.test", "A")).toBe(1);
  });

  it("tries the IPv6 address first and falls back to IPv4 when it does not answer", async () => {
    serve(CHALLENGE_PATH, 200, KEY_AUTHORIZATION);
    // The test server listens on 127.0.0.1 only, so [::1] refuses (or is unavailable).
    dns.add("dual.test", { type: "AAAA", data: "::1" }).add("dual.test", { type: "A", data: "127.0.0.1" });
    const attempts: ConnectAttempt[] = [];
    const result = await validateChallenge({ type: "http-01", identifier: { type: "dns", value: "dual.test" }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION }, settings, {
      onConnect: (attempt) => attempts.push(attempt),
    });
    expect(result).toEqual({ ok: true });
    expect(attempts.map((a) => a.address)).toEqual(["::1", "127.0.0.1"]);
  });

  it("connects to an IP identifier directly (RFC 8738), without a lookup", async () => {
    serve(CHALLENGE_PATH, 200, KEY_AUTHORIZATION);
    expect(await http01("127.0.0.1", "ip")).toEqual({ ok: true });
    expect(target.requests[0]?.host).toBe(`127.0.0.1:${target.port}`);
    expect(dns.queries).toEqual([]);
  });

  it("refuses another body without repeating any of it", async () => {
    serve(CHALLENGE_PATH, 200, `secret-intranet-page${"x".repeat(900)}`);
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:incorrectResponse" } });
    const detail = result.ok ? "" : result.problem.detail;
    expect(detail).toContain(`http://site.test:${target.port}${CHALLENGE_PATH}`);
    expect(detail).toContain("920-byte body");
    expect(detail).not.toContain("secret");
    expect(detail).not.toContain("xx");
  });

  it("says when the body is this token with another account's thumbprint", async () => {
    serve(CHALLENGE_PATH, 200, `${TOKEN}.another-thumbprint`);
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("another account key's thumbprint") } });
  });

  it("refuses a status other than 200 without repeating the page", async () => {
    serve(CHALLENGE_PATH, 403, "internal admin console: password=hunter2");
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:unauthorized", detail: expect.stringContaining("status 403") } });
    expect(result.ok ? "" : result.problem.detail).not.toMatch(/hunter2|admin console/);
  });

  it("refuses a status other than 200, naming it", async () => {
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:unauthorized", detail: expect.stringContaining("status 404") } });
  });

  it("refuses a body larger than maxResponseBytes, declared or streamed, and stops reading", async () => {
    serve(CHALLENGE_PATH, 200, "a".repeat(2000));
    expect(await http01("site.test")).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("larger than 1024 bytes") } });

    // An endless chunked body: the validator must hang up, so the server's writes stop.
    let written = 0;
    let closed: Promise<unknown> = Promise.resolve();
    target.handlers.set(CHALLENGE_PATH, (_request, response) => {
      response.writeHead(200);
      closed = once(response, "close");
      const pump = () => {
        while (!response.destroyed && written < 64 * 1024 * 1024) {
          written += 1024;
          if (!response.write("b".repeat(1024))) return void response.once("drain", pump);
        }
      };
      pump();
    });
    expect(await http01("site.test")).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("larger than 1024 bytes") } });
    await closed;
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it("follows relative and absolute redirects that keep the challenge path, to the identifier or names the requester may use", async () => {
    redirect(CHALLENGE_PATH, `/step1${CHALLENGE_PATH}`);
    redirect(`/step1${CHALLENGE_PATH}`, `http://other.test:${target.port}/step2${CHALLENGE_PATH}`, 301);
    redirect(`/step2${CHALLENGE_PATH}`, `//site.test:${target.port}/final${CHALLENGE_PATH}`, 307);
    serve(`/final${CHALLENGE_PATH}`, 200, KEY_AUTHORIZATION);
    const asked: string[] = [];
    const result = await validateChallenge(
      { type: "http-01", identifier: { type: "dns", value: "site.test" }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION, mayRedirectTo: (host) => (asked.push(host), host === "other.test") },
      settings,
    );
    expect(result).toEqual({ ok: true });
    expect(asked).toEqual(["other.test"]);
    expect(target.requests.map((r) => r.host)).toEqual([`site.test:${target.port}`, `site.test:${target.port}`, `other.test:${target.port}`, `site.test:${target.port}`]);
  });

  it.each([
    ["another name the requester may not use", () => `http://other.test:${target.port}${CHALLENGE_PATH}`, "neither the identifier nor a name"],
    ["another page of the same host", () => `http://site.test:${target.port}/admin/secrets`, "does not end in /.well-known/acme-challenge/<token>"],
    ["the challenge path with a query", () => `${CHALLENGE_PATH}?page=secrets`, "has a query"],
    ["another token's path", () => "/.well-known/acme-challenge/another-token", "does not end in"],
  ])("refuses a redirect to %s, naming only its host", async (_name, location, reason) => {
    redirect(CHALLENGE_PATH, location());
    serve("/admin/secrets", 200, "secret page");
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining(reason) } });
    expect(result.ok ? "" : result.problem.detail).not.toMatch(/secrets|page=|another-token/);
    expect(target.requests).toHaveLength(1);
  });

  it("never connects to link-local (metadata) addresses or to the networks the operator denies", async () => {
    serve(CHALLENGE_PATH, 200, KEY_AUTHORIZATION);
    dns.add("metadata.test", { type: "A", data: "169.254.169.254" });
    dns.add("mapped.test", { type: "AAAA", data: "::ffff:169.254.169.254" });
    const attempts: ConnectAttempt[] = [];
    for (const name of ["metadata.test", "mapped.test"]) {
      const result = await validateChallenge({ type: "http-01", identifier: { type: "dns", value: name }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION }, settings, {
        onConnect: (attempt) => attempts.push(attempt),
      });
      expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("in a network this CA does not connect to") } });
      expect(result.ok ? "" : result.problem.detail).not.toContain("169.254");
    }
    expect(await http01("169.254.169.254", "ip")).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("in a network this CA does not connect to") } });
    // loopback is allowed by default (a lab validates on 127.0.0.1) and refused once the operator denies it
    expect(await http01("site.test")).toEqual({ ok: true });
    expect(await http01("site.test", "dns", { deniedNetworks: ["127.0.0.0/8"] })).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("does not connect to") } });
    expect(attempts).toEqual([]);
  });

  it("stops after 10 redirects", async () => {
    redirect(CHALLENGE_PATH, CHALLENGE_PATH);
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("more than 10 redirects") } });
    expect(target.requests).toHaveLength(11);
  });

  it.each([
    ["another port", (p: number) => `http://site.test:${p}/x`, "is not one of the validation ports"],
    ["an IP literal", () => `http://127.0.0.1:${target.port}/x`, "IP addresses are not followed"],
    ["a numeric host that is an IP", () => `http://2130706433:${target.port}/x`, "IP addresses are not followed"],
    ["the file scheme", () => "file:///etc/passwd", "scheme file:"],
    ["the ftp scheme", (p: number) => `ftp://site.test:${p}/`, "scheme ftp:"],
    ["a URL with credentials", () => `http://user:pw@site.test:${target.port}/x`, "credentials"],
    ["garbage", () => "http://[::1", "not a URL"],
  ])("refuses a redirect to %s without connecting", async (_name, location, reason) => {
    redirect(CHALLENGE_PATH, location(forbidden.port));
    const result = await http01("site.test");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining(reason) } });
    expect(target.requests).toHaveLength(1);
    expect(forbidden.connections).toBe(0);
  });

  it("gives up on a target that sends headers and then trickles (slowloris) once the deadline passes", async () => {
    const timers: NodeJS.Timeout[] = [];
    target.handlers.set(CHALLENGE_PATH, (_request, response) => {
      response.writeHead(200);
      timers.push(setInterval(() => response.write(" "), 20));
    });
    // An IP identifier: no lookup shares the deadline, so only the trickle can use it up.
    const result = await http01("127.0.0.1", "ip", { timeoutMs: 300 });
    for (const t of timers) clearInterval(t);
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("timed out after 300 ms") } });
  });

  it("gives up on a target that never answers", async () => {
    target.handlers.set(CHALLENGE_PATH, () => {});
    expect(await http01("127.0.0.1", "ip", { timeoutMs: 300 })).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("timed out") } });
  });

  it("reports a refused connection", async () => {
    expect(await http01("site.test", "dns", { http01Port: 1 })).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("ECONNREFUSED") },
    });
  });

  it("reports a name without addresses and a failing DNS server as dns problems naming the name", async () => {
    expect(await http01("nowhere.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("nowhere.test") } });
    dns.fail("site.test", "SERVFAIL");
    expect(await http01("site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("ESERVFAIL") } });
    expect(target.connections).toBe(0);
  });

  it.each([
    ["dns", `site.test:${22}/x`],
    ["dns", "site.test/evil"],
    ["dns", "user@site.test"],
    ["dns", "127.0.0.1"],
    ["dns", "a".repeat(300)],
    ["ip", "site.test"],
    ["ip", "fe80::1%eth0"],
  ] as const)("refuses the %s identifier %j before any lookup or connection", async (type, value) => {
    const result = await http01(value, type);
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:malformed" } });
    expect(dns.queries).toEqual([]);
    expect(target.connections + forbidden.connections).toBe(0);
  });

  it("does not validate a wildcard", async () => {
    expect(await http01("*.site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:unauthorized" } });
    expect(dns.queries).toEqual([]);
  });
});
