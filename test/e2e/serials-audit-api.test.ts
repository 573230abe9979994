// Serials as people paste them (upper case from openssl, colon-separated from browsers),
// serial-prefix search on the inventory's index, the certificate's fingerprints and
// extensions, and one audit vocabulary for successes and refusals, over real HTTPS and
// PostgreSQL.
import { execFileSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr, pki } from "../support/tools.ts";

let t: TestApi;
const admin = (method: string, urlPath: string, body?: unknown) => t.call(method, urlPath, { token: t.ca.adminToken, body });
const colons = (serial: string) => serial.toUpperCase().match(/../g)!.join(":");

async function issue(dns: string): Promise<{ serial: string; certificate: string }> {
  const res = await admin("POST", "/v1/certificates", { csr: opensslCsr({ sans: [`DNS:${dns}`] }).csrPem, profile: "server" });
  expect(res.status, res.text).toBe(201);
  return res.json;
}

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe("serials in any case or colon-separated", () => {
  it("finds a certificate by the serial openssl x509 -serial prints and by the browsers' colon form", async () => {
    const { serial, certificate } = await issue("serial-case.example");
    const printed = execFileSync("openssl", ["x509", "-noout", "-serial"], { input: certificate }).toString().trim().replace("serial=", "");
    expect(printed).toBe(serial.toUpperCase());
    for (const typed of [printed, colons(serial), colons(serial).toLowerCase()]) {
      const res = await admin("GET", `/v1/certificates/${encodeURIComponent(typed)}`);
      expect(res.status, `${typed}: ${res.text}`).toBe(200);
      expect(res.json.serial).toBe(serial);
    }
    expect((await admin("GET", `/v1/certificates/${serial.toUpperCase()}/relying-party`)).status).not.toBe(400);
  });

  it("pki cert show and pki cert revoke take the same forms", async () => {
    const { serial } = await issue("cli-upper.example");
    const shown = pki(["cert", "show", colons(serial), "--json"], t.ca.env);
    expect(shown.status, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout).serial).toBe(serial);
    const revoked = pki(["cert", "revoke", serial.toUpperCase(), "--reason", "superseded"], t.ca.env);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${serial}`);
    expect(pki(["cert", "show", "not-a-serial"], t.ca.env).stderr).toMatch(/'not-a-serial' is not a certificate serial/);
  });

  it("refuses what is not a serial with a 400 naming the path parameter", async () => {
    for (const bad of ["xyz", "01-a3", "01::a3", "0".repeat(70)]) {
      const res = await admin("GET", `/v1/certificates/${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.json.detail, bad).toMatch(/^path serial: must be the certificate serial/);
    }
  });

  it("revokes by the upper-case serial, and the audit names the inventory's form", async () => {
    const { serial } = await issue("revoke-upper.example");
    const res = await admin("POST", `/v1/certificates/${serial.toUpperCase()}/revoke`, { reason: "superseded" });
    expect(res.status, res.text).toBe(200);
    expect(res.json.serial).toBe(serial);
    const audit = await admin("GET", `/v1/audit?target=${serial}&action=certificate.revoke`);
    expect(audit.json.items).toHaveLength(1);
  });
});

describe("search by serial prefix", () => {
  it("lists the certificates whose serial starts with what was typed, in any case or with colons", async () => {
    const mine = await issue("prefix-one.example");
    const other = await issue("prefix-two.example");
    // Random serials after a fixed 01: 4 bytes tell these two apart.
    const prefix = mine.serial.slice(0, 10);
    expect(other.serial.startsWith(prefix)).toBe(false);
    for (const typed of [prefix, prefix.toUpperCase(), colons(prefix)]) {
      const res = await admin("GET", `/v1/certificates?serial=${encodeURIComponent(typed)}`);
      expect(res.status, res.text).toBe(200);
      expect(res.json.items.map((c: { serial: string }) => c.serial)).toEqual([mine.serial]);
    }
    const odd = await admin("GET", `/v1/certificates?serial=${mine.serial.slice(0, 9)}`);
    expect(odd.json.items.map((c: { serial: string }) => c.serial)).toContain(mine.serial);
    const all = await admin("GET", `/v1/certificates?serial=01&limit=1000`);
    expect(all.json.items.map((c: { serial: string }) => c.serial)).toEqual(expect.arrayContaining([mine.serial, other.serial]));
  });

  it("a prefix ending in 9 or f takes in exactly the serials that start with it", async () => {
    const { serial } = await issue("prefix-edges.example");
    const made = ["7199aa", "719a00", "71f0", "71ff00", "7200"];
    await t.ca.inventory.sql.query(
      `INSERT INTO certificates
         SELECT (jsonb_populate_record(c, jsonb_build_object('serial', s, 'search_text', 'edge' || s))).*
         FROM certificates c, unnest($2::text[]) s WHERE c.serial = $1`,
      [serial, made],
    );
    const found = async (prefix: string) => (await admin("GET", `/v1/certificates?serial=${prefix}&limit=100`)).json.items.map((c: { serial: string }) => c.serial).sort();
    expect(await found("719")).toEqual(["7199aa", "719a00"]);
    expect(await found("7199")).toEqual(["7199aa"]);
    expect(await found("71F")).toEqual(["71f0", "71ff00"]);
    expect(await found("71ff")).toEqual(["71ff00"]);
    expect(await found("72")).toEqual(["7200"]);
  });

  it("refuses a prefix that is not hex with a 400 naming the field", async () => {
    const res = await admin("GET", "/v1/certificates?serial=api.example");
    expect(res.status).toBe(400);
    expect(res.json.detail).toMatch(/^query serial: must be the start of a certificate serial/);
  });

  it("runs as a range on the serial's primary-key index, not a scan, on a large inventory", async () => {
    const { serial } = await issue("prefix-plan.example");
    // 50,000 more rows, copies of that one under other serials, so the planner has a choice.
    await t.ca.inventory.sql.query(
      `INSERT INTO certificates
         SELECT (jsonb_populate_record(c, jsonb_build_object('serial', '01' || md5(i::text) || 'ff', 'search_text', 'bulk' || i))).*
         FROM certificates c, generate_series(1, 50000) i WHERE c.serial = $1`,
      [serial],
    );
    await t.ca.inventory.sql.query("ANALYZE certificates");
    // Every statement the store sends, as the driver receives it (a text, or a config object).
    const statements: Array<{ text: string; params: unknown[] }> = [];
    const driverQuery = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const [first, second] = args;
      if (typeof first === "string") statements.push({ text: first, params: Array.isArray(second) ? second : [] });
      else if (first && typeof first === "object" && "text" in first) statements.push({ text: String(first.text), params: (first as { values?: unknown[] }).values ?? [] });
      return (driverQuery as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof driverQuery;
    try {
      const page = await t.ca.inventory.certificates.list({ serialPrefix: serial.slice(0, 12) });
      expect(page.items.map((c) => c.serial)).toEqual([serial]);
    } finally {
      pg.Client.prototype.query = driverQuery;
    }
    const listing = statements.find((s) => /FROM certificates/.test(s.text))!;
    const plan = (await t.ca.inventory.sql.query<{ "QUERY PLAN": string }>(`EXPLAIN ${listing.text}`, listing.params)).map((r) => r["QUERY PLAN"]).join("\n");
    expect(plan).toMatch(/Index (Only )?Scan using certificates_pkey/);
    expect(plan).toMatch(/Index Cond: \(\(serial >= .*\) AND \(serial < /);
    expect(plan).not.toMatch(/Seq Scan/);
  });
});

describe("the certificate's fingerprints and extensions", () => {
  it("answers the fingerprints openssl computes and the key usages, purposes and extensions", async () => {
    const { serial, certificate } = await issue("extensions.example");
    const res = await admin("GET", `/v1/certificates/${serial}`);
    const openssl = (hash: string) =>
      execFileSync("openssl", ["x509", "-noout", "-fingerprint", `-${hash}`], { input: certificate })
        .toString()
        .trim()
        .split("=")[1];
    expect(res.json.fingerprints).toEqual({ sha256: openssl("sha256"), sha1: openssl("sha1") });
    expect(res.json.keyUsage).toContain("digitalSignature");
    expect(res.json.extendedKeyUsage).toEqual(["serverAuth"]);
    const names = res.json.extensions.map((e: { name: string }) => e.name);
    expect(names).toEqual(expect.arrayContaining(["basicConstraints", "keyUsage", "extKeyUsage", "subjectAltName", "authorityKeyIdentifier", "authorityInfoAccess", "cRLDistributionPoints"]));
    expect(res.json.extensions.find((e: { name: string }) => e.name === "subjectAltName").values).toEqual(["DNS:extensions.example"]);
  });
});

describe("one audit vocabulary for successes and refusals", () => {
  it("a refused issuance is certificate.issue, denied, with the names it asked for as its target", async () => {
    const created = await admin("POST", "/v1/provisioners", { name: "vocab", profiles: ["server"], names: ["DNS:*.vocab.example"], maxTtlSeconds: 86400 });
    expect(created.status, created.text).toBe(201);
    const refused = await t.call("POST", "/v1/certificates", {
      token: created.json.token,
      body: { csr: opensslCsr({ subject: "/CN=evil.example", sans: ["DNS:evil.example"] }).csrPem, profile: "server" },
    });
    expect(refused.status).toBe(403);
    const denied = await admin("GET", "/v1/audit?action=certificate.&outcome=denied&actor=provisioner:vocab");
    expect(denied.json.items).toHaveLength(1);
    expect(denied.json.items[0]).toMatchObject({ action: "certificate.issue", outcome: "denied", target: "CN=evil.example, DNS:evil.example", sourceIp: "127.0.0.1" });
  });

  it("a refused revocation is certificate.revoke, denied, on the serial; an anonymous refusal writes nothing", async () => {
    const { serial } = await issue("revoke-twice.example");
    expect((await admin("POST", `/v1/certificates/${serial}/revoke`, {})).status).toBe(200);
    const again = await admin("POST", `/v1/certificates/${colons(serial)}/revoke`, {});
    expect(again.status).toBe(409);
    const events = await admin("GET", `/v1/audit?target=${serial}&action=certificate.revoke`);
    expect(events.json.items.map((e: { outcome: string }) => e.outcome)).toEqual(["denied", "ok"]);

    const before = await admin("GET", "/v1/audit?limit=1");
    const anonymous = await t.call("POST", `/v1/certificates/${serial}/revoke`, { body: {} });
    expect(anonymous.status).toBe(401);
    const after = await admin("GET", "/v1/audit?limit=1");
    expect(after.json.items[0].id).toBe(before.json.items[0].id);
  });

  it("issuer events written for a console request name its source", async () => {
    const staged = await admin("POST", "/v1/issuers/rotate", { activateAt: new Date(Date.now() + 30 * 86400_000).toISOString() });
    expect(staged.status, staged.text).toBe(201);
    const events = await admin("GET", "/v1/audit?action=issuer.&limit=20");
    const fromRotation = events.json.items.filter(
      (e: { action: string; actor: string }) => e.actor.startsWith("admin:") && ["issuer.rotate.begin", "issuer.stage", "issuer.schedule-activation"].includes(e.action),
    );
    expect(fromRotation.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(["issuer.rotate.begin", "issuer.stage"]));
    for (const e of fromRotation) expect(e.sourceIp, e.action).toBe("127.0.0.1");
  });
});
