import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ChallengeSettings, caaLookupNames, checkCaa, dns01Digest, validateChallenge } from "./index.ts";
import { KEY_AUTHORIZATION, settingsFor, TestDnsServer, TOKEN } from "./test-fixtures.ts";

let dns: TestDnsServer;
let settings: ChallengeSettings;

beforeAll(async () => {
  dns = await TestDnsServer.start();
  settings = settingsFor(dns, { http01Port: 1, tlsAlpn01Port: 1 });
});
afterAll(() => dns.close());
beforeEach(() => dns.clear());

const dns01 = (value: string, overrides: Partial<ChallengeSettings> = {}) =>
  validateChallenge({ type: "dns-01", identifier: { type: "dns", value }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION }, { ...settings, ...overrides });

describe("dns-01", () => {
  const digest = dns01Digest(KEY_AUTHORIZATION);

  it("accepts base64url(SHA-256(key authorization)) among the TXT records at _acme-challenge", async () => {
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    dns.add("_acme-challenge.site.test", { type: "TXT", data: "unrelated" }).add("_acme-challenge.site.test", { type: "TXT", data: digest });
    expect(await dns01("site.test")).toEqual({ ok: true });
    expect(dns.queryCount("_acme-challenge.site.test", "TXT")).toBe(1);
  });

  it("joins a TXT record split into several strings", async () => {
    dns.add("_acme-challenge.site.test", { type: "TXT", data: [digest.slice(0, 10), digest.slice(10)] });
    expect(await dns01("site.test")).toEqual({ ok: true });
  });

  it("looks at the base domain for a wildcard", async () => {
    dns.add("_acme-challenge.site.test", { type: "TXT", data: digest });
    expect(await dns01("*.site.test")).toEqual({ ok: true });
  });

  it("refuses other values, naming the record and quoting one", async () => {
    dns.add("_acme-challenge.site.test", { type: "TXT", data: "stale-value" });
    expect(await dns01("site.test")).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:incorrectResponse", detail: expect.stringMatching(/_acme-challenge\.site\.test.*"stale-value"/) },
    });
  });

  it("reports a missing record as unauthorized and a failing server as a dns problem", async () => {
    expect(await dns01("site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:unauthorized", detail: "no TXT record at _acme-challenge.site.test" } });
    dns.fail("_acme-challenge.site.test", "SERVFAIL");
    expect(await dns01("site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("ESERVFAIL") } });
  });

  it("gives up on a server that does not answer once the deadline passes", async () => {
    dns.fail("_acme-challenge.site.test", "DROP");
    expect(await dns01("site.test", { timeoutMs: 300 })).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("timed out after 300 ms") },
    });
  });

  it("takes TXT records presented through the control endpoint (as lego's exec script does)", async () => {
    const present = await fetch(`${dns.controlUrl}/present`, { method: "POST", body: JSON.stringify({ fqdn: "_acme-challenge.site.test.", value: digest }) });
    expect(present.status).toBe(204);
    expect(await dns01("site.test")).toEqual({ ok: true });
    await fetch(`${dns.controlUrl}/cleanup`, { method: "POST", body: JSON.stringify({ fqdn: "_acme-challenge.site.test.", value: digest }) });
    expect(await dns01("site.test")).toMatchObject({ ok: false });
    const bad = await fetch(`${dns.controlUrl}/present`, { method: "POST", body: "{}" });
    expect(bad.status).toBe(400);
  });

  it("takes TXT records from the script written for lego's --dns exec provider", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "dns-exec-"));
    try {
      const script = dns.writeLegoExecScript(dir);
      // lego runs `<script> present <fqdn> <value>` and later `<script> cleanup <fqdn> <value>`
      // (asynchronously here: the control endpoint answers from this very process)
      await promisify(execFile)(script, ["present", "_acme-challenge.site.test.", digest]);
      expect(await dns01("site.test")).toEqual({ ok: true });
      await promisify(execFile)(script, ["cleanup", "_acme-challenge.site.test.", digest]);
      expect(await dns01("site.test")).toMatchObject({ ok: false, problem: { detail: "no TXT record at _acme-challenge.site.test" } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("CAA", () => {
  const CA = ["pki.example"];
  const caa = (domain: string, wildcard = false) => checkCaa(domain, CA, settings, { wildcard });
  const issue = (value: string, flags = 0) => ({ type: "CAA" as const, data: { flags, tag: "issue", value } });
  const issueWild = (value: string) => ({ type: "CAA" as const, data: { tag: "issuewild", value } });

  it("climbs from the domain to its top-level domain", () => {
    expect(caaLookupNames("*.a.b.Example.test.")).toEqual(["a.b.example.test", "b.example.test", "example.test", "test"]);
  });

  it("allows issuance when no name up the tree has CAA records, after asking each", async () => {
    expect(await caa("a.site.test")).toEqual({ ok: true });
    expect(["a.site.test", "site.test", "test"].map((n) => dns.queryCount(n, "CAA"))).toEqual([1, 1, 1]);
  });

  it("allows a CA named in the first non-empty set (parameters ignored, case-insensitive) and stops climbing there", async () => {
    dns.add("site.test", issue("PKI.example; account=42")).add("test", issue("other-ca.example"));
    expect(await caa("a.site.test")).toEqual({ ok: true });
    expect(dns.queryCount("test", "CAA")).toBe(0);
  });

  it("refuses when the first non-empty set names only other CAs, even if a parent allows this one", async () => {
    dns.add("site.test", issue("other-ca.example")).add("test", issue("pki.example"));
    expect(await caa("a.site.test")).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:caa", detail: expect.stringMatching(/issue records at site\.test.*other-ca\.example.*pki\.example/) },
    });
  });

  it('refuses on an empty issuer (issue ";") — nobody may issue', async () => {
    dns.add("site.test", issue(";"));
    expect(await caa("site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:caa" } });
  });

  it("uses issuewild for wildcards when present, issue otherwise", async () => {
    dns.add("site.test", issue("pki.example")).add("site.test", issueWild("other-ca.example"));
    expect(await caa("site.test")).toEqual({ ok: true });
    expect(await caa("*.site.test", true)).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("issuewild") } });
    dns.clear();
    dns.add("site.test", issue("pki.example"));
    expect(await caa("*.site.test", true)).toEqual({ ok: true });
    dns.clear();
    dns.add("site.test", issueWild("pki.example")).add("site.test", issue("other-ca.example"));
    expect(await caa("*.site.test", true)).toEqual({ ok: true });
    expect(await caa("site.test")).toMatchObject({ ok: false });
  });

  it("refuses a critical property it does not understand, and ignores a non-critical one", async () => {
    dns.add("site.test", issue("pki.example")).add("site.test", { type: "CAA", data: { flags: 128, tag: "tbs", value: "x" } });
    expect(await caa("site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:caa", detail: expect.stringContaining('critical property "tbs"') } });
    dns.clear();
    dns.add("site.test", issue("pki.example")).add("site.test", { type: "CAA", data: { flags: 0, tag: "tbs", value: "x" } });
    expect(await caa("site.test")).toEqual({ ok: true });
  });

  it("allows a set with only iodef (no issue restriction)", async () => {
    dns.add("site.test", { type: "CAA", data: { tag: "iodef", value: "mailto:sec@site.test" } });
    expect(await caa("site.test")).toEqual({ ok: true });
  });

  it("has nothing to check for an IP address, and refuses a malformed domain without a lookup", async () => {
    expect(await caa("127.0.0.1")).toEqual({ ok: true });
    expect(await caa("site.test/x")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:malformed" } });
    expect(dns.queries).toEqual([]);
  });

  it("refuses when a lookup fails rather than treating it as no records", async () => {
    dns.fail("site.test", "SERVFAIL");
    expect(await caa("a.site.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("CAA records at site.test") } });
    dns.fail("site.test", "DROP");
    expect(await checkCaa("a.site.test", CA, { ...settings, timeoutMs: 300 }, { wildcard: false })).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:dns", detail: expect.stringContaining("timed out after 300 ms") },
    });
  });
});
