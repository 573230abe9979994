import { isIP } from "node:net";
import { fuzzSettings } from "@pki/config";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowedRedirectPorts, type ConnectAttempt, decideRedirect, validateChallenge } from "./index.ts";
import { CHALLENGE_PATH, ChallengeHttpServer, KEY_AUTHORIZATION, settingsFor, TestDnsServer, TOKEN } from "./test-fixtures.ts";

const FUZZ = fuzzSettings();

let dns: TestDnsServer;
let target: ChallengeHttpServer;
let forbidden: ChallengeHttpServer;
let settings: { http01Port: number; tlsAlpn01Port: number };

beforeAll(async () => {
  dns = await TestDnsServer.start();
  target = await ChallengeHttpServer.start();
  forbidden = await ChallengeHttpServer.start();
  for (const name of ["site.test", "other.test", "localhost"]) dns.add(name, { type: "A", data: "127.0.0.1" });
  // tls-alpn-01's configured port is 1: allowed by policy, refused on loopback.
  settings = { http01Port: target.port, tlsAlpn01Port: 1 };
});
afterAll(async () => {
  await Promise.all([dns.close(), target.close(), forbidden.close()]);
});

/** Location values mixing allowed and forbidden schemes, hosts (names, IP literals in many spellings) and ports. */
const locations = () =>
  fc.oneof(
    fc
      .record({
        scheme: fc.constantFrom("http", "https", "HTTP", "hTTps", "ftp", "file", "ws", "gopher", "javascript", "data", "h\ttp", ""),
        separator: fc.constantFrom("://", ":", ":/", "://", ":\\\\", ":///"),
        userinfo: fc.constantFrom("", "", "user@", "user:pw@", ":@"),
        host: fc.constantFrom("site.test", "other.test", "localhost", "SITE.test.", "127.0.0.1", "[::1]", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "nowhere.test", "", "site.test%00"),
        port: fc.oneof(
          fc.constant(""),
          fc.constantFrom(80, 443, settings.http01Port, settings.tlsAlpn01Port, forbidden.port, 0, 22, 65535, 70000).map(String),
          fc.integer({ min: 0, max: 70000 }).map(String),
          fc.constantFrom("080", "+80", " 80", "80a"),
        ),
        path: fc.constantFrom("/", "", CHALLENGE_PATH, `/prefix${CHALLENGE_PATH}`, `${CHALLENGE_PATH}?q`, "/x?y#z", "/..%2f", "@evil.test/"),
      })
      .map(({ scheme, separator, userinfo, host, port, path }) => `${scheme}${separator}${userinfo}${host}${port ? `:${port}` : ""}${path}`),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.string({ maxLength: 60 }),
    fc.constantFrom("/relative", "//other.test/x", `//site.test:${forbidden.port}/x`, "?q", "#f", "", " "),
  );

function checkAttempt(attempt: ConnectAttempt): void {
  expect(["http", "https"]).toContain(attempt.scheme);
  expect(allowedRedirectPorts(settings).has(attempt.port)).toBe(true);
  expect(isIP(attempt.host)).toBe(0);
}

describe("redirect policy (property)", () => {
  it("never lets a redirect name a scheme other than http(s), a port outside the validation ports, an IP literal, a host outside the scope or another path", () => {
    const from = new URL(`http://site.test:${settings.http01Port}${CHALLENGE_PATH}`);
    fc.assert(
      fc.property(locations(), (location) => {
        const decision = decideRedirect(location, from, settings, { token: TOKEN, identifierHost: "site.test", mayRedirectTo: (host) => host === "other.test" });
        if (!decision.ok) return;
        const url = decision.url;
        expect(["site.test", "other.test"]).toContain(url.hostname.toLowerCase().replace(/\.$/, ""));
        expect(url.pathname.endsWith(CHALLENGE_PATH)).toBe(true);
        expect(url.search).toBe("");
        expect(["http:", "https:"]).toContain(url.protocol);
        const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
        expect(allowedRedirectPorts(settings).has(port)).toBe(true);
        expect(isIP(url.hostname.replace(/^\[|\]$/g, ""))).toBe(0);
      }),
      { numRuns: FUZZ.runs, seed: FUZZ.seed },
    );
  });

  it("never connects to a forbidden scheme, port or IP literal when a real target redirects anywhere", async () => {
    const attempts: ConnectAttempt[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(locations(), { minLength: 1, maxLength: 3 }), async (chain) => {
        target.reset();
        // The challenge path redirects to the first location; every hop the validator follows redirects to the next.
        let hop = 0;
        target.server.removeAllListeners("request");
        target.server.on("request", (_request, response) => {
          const location = chain[hop++];
          if (location === undefined) return void response.writeHead(200).end(KEY_AUTHORIZATION);
          response.writeHead(302, { location }).end();
        });
        attempts.length = 0;
        const result = await validateChallenge(
          { type: "http-01", identifier: { type: "dns", value: "site.test" }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION },
          settingsFor(dns, settings, { timeoutMs: 1000 }),
          { onConnect: (attempt) => attempts.push(attempt) },
        );
        expect(attempts.length).toBeGreaterThan(0);
        for (const attempt of attempts) checkAttempt(attempt);
        expect(forbidden.connections).toBe(0);
        expect(result.ok || result.problem.detail.length <= 400).toBe(true);
      }),
      { numRuns: Math.min(FUZZ.runs, 150), seed: FUZZ.seed },
    );
  });
});
