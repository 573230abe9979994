// The operator console's backend over real HTTPS: sessions (cookie, CSRF, idle expiry,
// logout, operator removal), the overview, the audit log, and the issuer views and actions.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "@pki/db";
import { addProvisioner, startTestApi, type ApiResponse, type TestApi } from "../support/api.ts";
import { asSession, consoleLogin, sessionCookieOf } from "../support/console.ts";
import { opensslCsr, pki } from "../support/tools.ts";

/** the file's idle timeout, long enough for a busy machine; the idle test shortens it */
const IDLE_SECONDS = 120;
const SHORT_IDLE_SECONDS = 2;

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", env: { PKI_CONSOLE_IDLE_SECONDS: String(IDLE_SECONDS) } });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

const login = (token = t.ca.adminToken) => consoleLogin(t, token);

describe("console sessions", () => {
  it("logs in with an admin token: a random HttpOnly, Secure, SameSite=Strict cookie stored only as its SHA-256", async () => {
    const s = await login();
    expect(s.res.json).toEqual({ operator: "bootstrap", csrfToken: expect.any(String), idleTimeoutSeconds: IDLE_SECONDS });
    const { value, attributes } = sessionCookieOf(s.res);
    expect(Buffer.from(value, "base64url")).toHaveLength(32);
    expect(attributes).toEqual(expect.arrayContaining(["HttpOnly", "Secure", "SameSite=Strict", "Path=/", `Max-Age=${IDLE_SECONDS}`]));
    expect(s.res.headers["cache-control"]).toBe("no-store");
    const rows = await t.ca.inventory.sql.query<{ id_hash: string; operator: string }>(`SELECT id_hash, operator FROM console_sessions`);
    expect(rows).toContainEqual({ id_hash: hashToken(value), operator: "bootstrap" });
    expect(JSON.stringify(rows)).not.toContain(value);

    const bad = await t.call("POST", "/v1/console/session", { body: { token: "not-a-token-at-all" } });
    expect(bad.status).toBe(401);
    expect(bad.headers["set-cookie"]).toBeUndefined();
  });

  it("a session authenticates GET routes; a POST needs the CSRF token and is audited under the operator's name", async () => {
    const s = await login();
    const list = await t.call("GET", "/v1/certificates", asSession(s));
    expect(list.status, list.text).toBe(200);
    const me = await t.call("GET", "/v1/console/session", asSession(s));
    expect(me.json).toEqual({ operator: "bootstrap", csrfToken: s.csrf, idleTimeoutSeconds: IDLE_SECONDS });

    const csr = opensslCsr({ sans: ["DNS:console.example"] }).csrPem;
    const rowsBefore = await t.certificateRows();
    const noCsrf = await t.call("POST", "/v1/certificates", { ...asSession(s), body: { csr } });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json.detail).toMatch(/missing or wrong CSRF token/);
    const wrongCsrf = await t.call("POST", "/v1/certificates", { ...asSession(s, { "x-csrf-token": `${s.csrf.slice(0, -1)}${s.csrf.endsWith("A") ? "B" : "A"}` }), body: { csr } });
    expect(wrongCsrf.status).toBe(403);
    expect(await t.certificateRows()).toBe(rowsBefore);

    const issued = await t.call("POST", "/v1/certificates", { ...asSession(s, { "x-csrf-token": s.csrf }), body: { csr } });
    expect(issued.status, issued.text).toBe(201);
    const audit = await t.call("GET", `/v1/audit?target=${issued.json.serial}&action=certificate.issue`, { token: t.ca.adminToken });
    expect(audit.json.items.map((e: { actor: string }) => e.actor)).toEqual(["admin:bootstrap"]);
  });

  it("failed logins count against the source's limit (429 past it); a valid token still logs in", async () => {
    const from = { localAddress: "127.0.0.9" };
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await t.call("POST", "/v1/console/session", { ...from, body: { token: `wrong-${i}-wrong-wrong` } })).status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses[20]).toBe(429);
    expect((await t.call("POST", "/v1/console/session", { ...from, body: { token: t.ca.adminToken } })).status).toBe(201);

    // "am I logged in?" without a cookie is the console's page load, not a guess: never 429
    const pageLoads: number[] = [];
    for (let i = 0; i < 25; i++) pageLoads.push((await t.call("GET", "/v1/console/session", { localAddress: "127.0.0.10" })).status);
    expect(pageLoads).toEqual(Array(25).fill(401));
  });

  it("a malformed or unknown cookie is a 401, never a session", async () => {
    for (const cookie of ["pki_session=", "pki_session=%00%ff", `pki_session=${"A".repeat(43)}`, `pki_session=${"A".repeat(5000)}`]) {
      const res = await t.call("GET", "/v1/certificates", { headers: { cookie } });
      expect(res.status, cookie).toBe(401);
    }
  });

  it("an Authorization header wins over the cookie", async () => {
    const s = await login();
    const res = await t.call("GET", "/v1/certificates", { ...asSession(s), token: "wrong-token-wrong-token" });
    expect(res.status).toBe(401);
  });

  it("ends after the idle timeout, enforced by the server", async () => {
    // The server reads the timeout on every request; shortened here only, so the other
    // tests' sessions survive a slow, shared machine.
    t.ca.runtime.config.api.consoleIdleSeconds = SHORT_IDLE_SECONDS;
    try {
      const s = await login();
      expect(s.res.json.idleTimeoutSeconds).toBe(SHORT_IDLE_SECONDS);
      await sleep((SHORT_IDLE_SECONDS + 1) * 1000);
      const after = await t.call("GET", "/v1/overview", asSession(s));
      expect(after.status).toBe(401);
      expect(after.json.detail).toMatch(/session has ended/);
      expect((await t.call("GET", "/v1/console/session", asSession(s))).status).toBe(401);
      // removed on use
      expect(await t.ca.inventory.sql.query(`SELECT 1 FROM console_sessions WHERE id_hash = $1`, [hashToken(s.value)])).toHaveLength(0);
    } finally {
      t.ca.runtime.config.api.consoleIdleSeconds = IDLE_SECONDS;
    }
  });

  it("logout needs the CSRF token, deletes the row and clears the cookie", async () => {
    const s = await login();
    expect((await t.call("DELETE", "/v1/console/session", asSession(s))).status).toBe(403);
    const out = await t.call("DELETE", "/v1/console/session", asSession(s, { "x-csrf-token": s.csrf }));
    expect(out.status).toBe(204);
    expect(sessionCookieOf(out)).toEqual({ value: "", attributes: expect.arrayContaining(["Max-Age=0"]) });
    expect((await t.call("GET", "/v1/certificates", asSession(s))).status).toBe(401);
    expect(await t.ca.inventory.sql.query(`SELECT 1 FROM console_sessions WHERE id_hash = $1`, [hashToken(s.value)])).toHaveLength(0);
  });

  it("the sweep and every login remove sessions that are over", async () => {
    const store = t.ca.inventory.consoleSessions;
    const limits = { idleSeconds: IDLE_SECONDS, maxPerOperator: 20 };
    const longAgo = new Date(Date.now() - 3600_000);
    await store.create({ idHash: "a".repeat(64), operator: "bootstrap", csrfToken: "x", now: longAgo, expiresAt: new Date(Date.now() + 3600_000) }, limits);
    await store.create({ idHash: "b".repeat(64), operator: "bootstrap", csrfToken: "x", now: longAgo, expiresAt: new Date(Date.now() + 3600_000) }, limits);
    const stale = () => t.ca.inventory.sql.query(`SELECT id_hash FROM console_sessions WHERE id_hash IN ($1, $2)`, ["a".repeat(64), "b".repeat(64)]);
    expect(await stale()).toHaveLength(2);
    expect(await store.sweep(new Date(), IDLE_SECONDS)).toBeGreaterThanOrEqual(2);
    expect(await stale()).toHaveLength(0);
    await store.create({ idHash: "c".repeat(64), operator: "bootstrap", csrfToken: "x", now: longAgo, expiresAt: new Date(Date.now() + 3600_000) }, limits);
    await login();
    expect(await t.ca.inventory.sql.query(`SELECT 1 FROM console_sessions WHERE id_hash = $1`, ["c".repeat(64)])).toHaveLength(0);
  });

  it("keeps at most 20 sessions per operator, dropping the oldest", async () => {
    const first = await login();
    for (let i = 0; i < 20; i++) await login();
    expect(await t.ca.inventory.consoleSessions.count("bootstrap")).toBe(20);
    expect((await t.call("GET", "/v1/certificates", asSession(first))).status).toBe(401);
  });

  it("pki admin add/list/remove: a named operator logs in, and removal ends their sessions at once", async () => {
    const added = pki(["admin", "add", "alice"], t.ca.env);
    expect(added.status, added.stderr).toBe(0);
    const token = added.stdout.trim();
    expect(pki(["admin", "add", "alice"], t.ca.env).stderr).toMatch(/already exists/);
    expect(pki(["admin", "add", "Alice!"], t.ca.env).stderr).toMatch(/not an admin name/);
    const stored = await t.ca.inventory.sql.query<{ token_hash: string }>(`SELECT token_hash FROM admin_tokens WHERE name = 'alice'`);
    expect(stored).toEqual([{ token_hash: hashToken(token) }]);

    const s = await login(token);
    expect(s.res.json.operator).toBe("alice");
    const revoked = await t.call("POST", `/v1/certificates/${"ab".repeat(8)}/revoke`, { ...asSession(s, { "x-csrf-token": s.csrf }), body: {} });
    expect(revoked.status).toBe(404);
    const listed = pki(["admin", "list", "--json"], t.ca.env);
    expect(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).name),
    ).toEqual(["bootstrap", "alice"]);

    const removed = pki(["admin", "remove", "alice"], t.ca.env);
    expect(removed.stdout).toMatch(/admin 'alice' removed; 1 console session\(s\) ended/);
    expect((await t.call("GET", "/v1/certificates", asSession(s))).status).toBe(401);
    expect((await t.call("GET", "/v1/certificates", { token })).status).toBe(401);
    expect((await t.call("POST", "/v1/console/session", { body: { token } })).status).toBe(401);
    expect(pki(["admin", "remove", "alice"], t.ca.env).stderr).toMatch(/no live admin named 'alice'/);
    const audited = await t.call("GET", "/v1/audit?target=alice&action=admin.", { token: t.ca.adminToken });
    expect(audited.json.items.map((e: { action: string; actor: string }) => [e.action, e.actor.split(":")[0]])).toEqual([
      ["admin.remove", "cli"],
      ["admin.create", "cli"],
    ]);
    expect(audited.json.items[0].details).toEqual({ sessionsEnded: 1 });
  });
});

/** Issues a service certificate as the admin (through the API), `ttlSeconds` long. */
async function issueService(name: string, options: { token?: string; ttlSeconds?: number } = {}): Promise<string> {
  const res = await t.call("POST", "/v1/certificates", {
    token: options.token ?? t.ca.adminToken,
    body: { csr: opensslCsr({ sans: [`DNS:${name}`] }).csrPem, ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}) },
  });
  expect(res.status, res.text).toBe(201);
  return res.json.serial as string;
}

describe("overview, audit and inventory views", () => {
  it("the overview counts services' certificates apart from the CA's own", async () => {
    const before = (await t.call("GET", "/v1/overview", { token: t.ca.adminToken })).json;
    expect(before.internal.valid).toBeGreaterThanOrEqual(1); // the API listener's own certificate
    await issueService("overview.example", { ttlSeconds: 3600 });
    const after = await t.call("GET", "/v1/overview", { token: t.ca.adminToken });
    expect(after.status, after.text).toBe(200);
    expect(after.json.services.valid).toBe(before.services.valid + 1);
    expect(after.json.internal).toEqual(before.internal);
    expect(after.json.expiring.next24h).toBe(before.expiring.next24h + 1);
    const days = (o: { expiryByDay: { count: number }[] }) => o.expiryByDay.reduce((n, d) => n + d.count, 0);
    expect(days(after.json)).toBe(days(before) + 1);
    expect(after.json.autoRenew).toEqual({ enabled: expect.any(Number), failedRenewals: [] });

    // a renewal the scheduler could not sign, as the issuance cycle audits it
    const serial = await issueService("failed-renewal.example");
    await t.ca.inventory.audit.record({ actor: "scheduler:renewal", action: "certificate.issue", target: serial, outcome: "error", details: { reason: "the token is not there" } });
    await t.ca.inventory.audit.record({ actor: "scheduler:renewal", action: "certificate.issue", target: serial, outcome: "ok" });
    const failed = (await t.call("GET", "/v1/overview", { token: t.ca.adminToken })).json.autoRenew.failedRenewals;
    expect(failed).toEqual([{ serial, subject: "", at: expect.any(String), reason: "the token is not there" }]);
    const errors = await t.call("GET", "/v1/audit?actor=scheduler:renewal&outcome=error", { token: t.ca.adminToken });
    expect(errors.json.items.map((e: { outcome: string }) => e.outcome)).toEqual(["error"]);
  });

  it("lists the CA's own certificates apart, latest first, by provisioner, with details and chain", async () => {
    const own = await t.call("GET", "/v1/certificates?internal=true", { token: t.ca.adminToken });
    expect(own.status, own.text).toBe(200);
    expect(own.json.items.length).toBeGreaterThanOrEqual(1);
    expect(own.json.items.every((c: { internal: boolean }) => c.internal)).toBe(true);
    const services = await t.call("GET", "/v1/certificates?internal=false&limit=1000", { token: t.ca.adminToken });
    expect(services.json.items.length).toBeGreaterThanOrEqual(1);
    expect(services.json.items.some((c: { internal: boolean }) => c.internal)).toBe(false);

    const asc = (await t.call("GET", "/v1/certificates?limit=1000", { token: t.ca.adminToken })).json.items.map((c: { serial: string }) => c.serial);
    const desc: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse = await t.call("GET", `/v1/certificates?order=desc&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: t.ca.adminToken });
      expect(page.status, page.text).toBe(200);
      desc.push(...page.json.items.map((c: { serial: string }) => c.serial));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(desc).toEqual([...asc].reverse());

    const created = await t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { name: "consoleprov", profiles: ["mtls"], names: ["DNS:*.prov.example"], maxTtlSeconds: 86400 } });
    const serial = await issueService("a.prov.example", { token: created.json.token });
    const byProvisioner = await t.call("GET", "/v1/certificates?provisioner=consoleprov", { token: t.ca.adminToken });
    expect(byProvisioner.json.items.map((c: { serial: string; provisioner: string }) => [c.serial, c.provisioner])).toEqual([[serial, "consoleprov"]]);
    expect((await t.call("GET", "/v1/certificates?provisioner=nobody", { token: t.ca.adminToken })).status).toBe(404);
    expect((await t.call("GET", "/v1/certificates?internal=maybe", { token: t.ca.adminToken })).status).toBe(400);

    const one = await t.call("GET", `/v1/certificates/${serial}`, { token: t.ca.adminToken });
    expect(one.json).toMatchObject({ serial, internal: false, provisioner: "consoleprov", requester: "provisioner:consoleprov", autoRenew: false, predecessorSerial: null, successorSerial: null });
    expect(one.json.pem).toBe(one.json.certificate);
    expect(one.json.chain).toHaveLength(2);
  });

  it("the audit log: prefix filters on actor and action, exact target, time range, keyset pages newest first", async () => {
    for (let i = 0; i < 5; i++) await t.ca.inventory.audit.record({ actor: "test:pager", action: `pager.step${i}`, target: `t${i}` });
    await t.ca.inventory.audit.record({ actor: "test:pagerX", action: "pager.other" });
    const seen: { id: string; action: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: ApiResponse = await t.call("GET", `/v1/audit?actor=test:pager&action=pager.step&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: t.ca.adminToken });
      expect(page.status, page.text).toBe(200);
      seen.push(...page.json.items);
      cursor = page.json.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((e) => e.action)).toEqual(["pager.step4", "pager.step3", "pager.step2", "pager.step1", "pager.step0"]);
    const ids = seen.map((e) => BigInt(e.id));
    expect([...ids].sort((a, b) => (a > b ? -1 : 1))).toEqual(ids);

    expect((await t.call("GET", "/v1/audit?actor=test:pager", { token: t.ca.adminToken })).json.items).toHaveLength(6);
    // LIKE wildcards in a prefix match themselves
    expect((await t.call("GET", "/v1/audit?actor=test:p_ger", { token: t.ca.adminToken })).json.items).toHaveLength(0);
    expect((await t.call("GET", "/v1/audit?actor=test:pager&target=t3", { token: t.ca.adminToken })).json.items.map((e: { action: string }) => e.action)).toEqual(["pager.step3"]);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await t.call("GET", `/v1/audit?actor=test:pager&since=${future}`, { token: t.ca.adminToken })).json.items).toHaveLength(0);
    expect((await t.call("GET", `/v1/audit?actor=test:pager&until=${future}`, { token: t.ca.adminToken })).json.items).toHaveLength(6);
    expect((await t.call("GET", "/v1/audit?cursor=abc", { token: t.ca.adminToken })).status).toBe(400);
    expect((await t.call("GET", "/v1/audit?limit=501", { token: t.ca.adminToken })).status).toBe(400);
    expect((await t.call("GET", "/v1/audit")).status).toBe(401);
  });
});

describe("issuers: views, activation, revocation with re-issue", () => {
  it("lists issuers with revocation, CRL and OCSP fields; only operators get the blast radius, a root's being its whole hierarchy", async () => {
    await issueService("blast.radius.example");
    const anonymous = await t.call("GET", "/v1/issuers");
    expect(anonymous.status).toBe(200);
    for (const issuer of anonymous.json) {
      expect(issuer).not.toHaveProperty("liveCertificates");
      expect(issuer).not.toHaveProperty("liveCertificatesCountedAt");
    }
    const res = await t.call("GET", "/v1/issuers", { token: t.ca.adminToken });
    expect(res.status).toBe(200);
    const active = res.json.find((i: { role: string; status: string }) => i.role === "intermediate" && i.status === "active");
    const services = (await t.call("GET", `/v1/certificates?internal=false&status=valid&issuerId=${active.id}&limit=1000`, { token: t.ca.adminToken })).json.items;
    expect(services.length).toBeGreaterThan(0);
    expect(active).toMatchObject({ revokedAt: null, revocationReason: null, liveCertificates: services.length, liveCertificatesCountedAt: expect.any(String) });
    expect(active).toHaveProperty("crl");
    expect(active).toHaveProperty("ocsp");
    const root = res.json.find((i: { id: string }) => i.id === active.parentId);
    const children = res.json.filter((i: { role: string; parentId: string }) => i.role === "intermediate" && i.parentId === root.id);
    expect(root.liveCertificates).toBe(children.reduce((sum: number, i: { liveCertificates: number }) => sum + i.liveCertificates, 0));
    expect(root.liveCertificates).toBeGreaterThanOrEqual(services.length);
    // A console session is an operator too; a provisioner is not; a wrong token is refused, not ignored.
    const session = await login();
    const viaSession = await t.call("GET", "/v1/issuers", asSession(session));
    expect(viaSession.json.find((i: { id: string }) => i.id === active.id).liveCertificates).toBe(services.length);
    const provisioner = await addProvisioner(t, { name: "issuers-reader", names: ["DNS:.reader.example"] });
    const asProvisioner = await t.call("GET", "/v1/issuers", { token: provisioner });
    expect(asProvisioner.status).toBe(200);
    expect(asProvisioner.json[0]).not.toHaveProperty("liveCertificates");
    const wrong = await t.call("GET", "/v1/issuers", { token: "pki_admin_not-a-token-of-this-ca" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers["content-type"]).toMatch(/problem\+json/);
  });

  it("counts for operators come from a figure kept a few seconds and shared, not a scan per request", async () => {
    const first = (await t.call("GET", "/v1/issuers", { token: t.ca.adminToken })).json;
    const active = first.find((i: { role: string; status: string }) => i.role === "intermediate" && i.status === "active");
    await issueService("counted.later.example");
    const again = await Promise.all(Array.from({ length: 5 }, () => t.call("GET", "/v1/issuers", { token: t.ca.adminToken })));
    // The same countedAt (a new count would carry its own time) and the same figure although one more certificate is live.
    for (const res of again) {
      const same = res.json.find((i: { id: string }) => i.id === active.id);
      expect(same.liveCertificatesCountedAt).toBe(active.liveCertificatesCountedAt);
      expect(same.liveCertificates).toBe(active.liveCertificates);
    }
  });

  it("dry run changes nothing; revoke with reissue re-issues every affected certificate in the background", async () => {
    const old = (await t.call("GET", "/v1/issuers")).json.find((i: { role: string; status: string }) => i.role === "intermediate" && i.status === "active");
    for (const n of ["r1", "r2", "r3"]) await issueService(`${n}.revoke.example`);
    const live = (await t.call("GET", `/v1/certificates?internal=false&status=valid&issuerId=${old.id}&limit=1000`, { token: t.ca.adminToken })).json.items.length as number;
    const staged = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: { activateAt: new Date(Date.now() + 30 * 86400_000).toISOString() } });
    expect(staged.status, staged.text).toBe(201);
    const stagedId = staged.json.issuer.id as string;

    const auditBefore = await t.ca.inventory.sql.query(`SELECT id FROM audit_events`);
    const dry = await t.call("POST", `/v1/issuers/${old.id}/revoke`, { token: t.ca.adminToken, body: { dryRun: true, reissue: true } });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.json).toEqual({ issuerId: old.id, replacement: `staged ${stagedId}`, affected: live });
    expect(await t.ca.inventory.sql.query(`SELECT id FROM audit_events`)).toHaveLength(auditBefore.length);
    const unchanged = (await t.call("GET", "/v1/issuers")).json;
    expect(unchanged.find((i: { id: string }) => i.id === old.id)).toMatchObject({ status: "active", revokedAt: null });
    expect(unchanged.find((i: { id: string }) => i.id === stagedId)).toMatchObject({ status: "staged" });
    expect((await t.call("GET", `/v1/issuers/${old.id}/reissue`, { token: t.ca.adminToken })).status).toBe(404);

    const revoked = await t.call("POST", `/v1/issuers/${old.id}/revoke`, { token: t.ca.adminToken, body: { reason: "keyCompromise", reissue: true } });
    expect(revoked.status, revoked.text).toBe(202);
    expect(revoked.json).toEqual({ revoked: old.id, replacement: stagedId, affected: live });
    let progress: ApiResponse;
    do {
      await sleep(100);
      progress = await t.call("GET", `/v1/issuers/${old.id}/reissue`, { token: t.ca.adminToken });
      expect(progress.status, progress.text).toBe(200);
    } while (!progress.json.done);
    expect(progress.json).toEqual({
      total: live,
      reissued: live,
      failed: [],
      failedCount: 0,
      done: true,
      stalled: false,
      error: null,
      actor: "admin:bootstrap",
      startedAt: expect.any(String),
      updatedAt: expect.any(String),
      finishedAt: expect.any(String),
    });
    // The revocation and the end of the re-issue make this process count again.
    const after = (await t.call("GET", "/v1/issuers", { token: t.ca.adminToken })).json;
    expect(after.find((i: { id: string }) => i.id === old.id)).toMatchObject({ status: "revoked", revocationReason: "keyCompromise", revokedAt: expect.any(String) });
    expect(after.find((i: { id: string }) => i.id === stagedId)).toMatchObject({ status: "active", liveCertificates: live });
    const audit = await t.call("GET", `/v1/audit?target=${old.id}&action=issuer.revoke`, { token: t.ca.adminToken });
    expect(audit.json.items.map((e: { actor: string }) => e.actor)).toEqual(["admin:bootstrap"]);
  });

  it("activates a staged intermediate (409 when it is not staged)", async () => {
    const staged = await t.call("POST", "/v1/issuers/rotate", { token: t.ca.adminToken, body: { activateAt: new Date(Date.now() + 30 * 86400_000).toISOString() } });
    const id = staged.json.issuer.id as string;
    const previous = (await t.call("GET", "/v1/issuers")).json.find((i: { role: string; status: string }) => i.role === "intermediate" && i.status === "active").id;
    const activated = await t.call("POST", `/v1/issuers/${id}/activate`, { token: t.ca.adminToken });
    expect(activated.status, activated.text).toBe(200);
    expect(activated.json).toEqual({ activated: id, retired: [previous] });
    expect((await t.call("POST", `/v1/issuers/${id}/activate`, { token: t.ca.adminToken })).status).toBe(409);
    expect((await t.call("POST", "/v1/issuers/nope/activate", { token: t.ca.adminToken })).status).toBe(404);
    const issued = await issueService("after.activate.example");
    expect((await t.call("GET", `/v1/certificates/${issued}`, { token: t.ca.adminToken })).json.issuerId).toBe(id);

    // The retired one: revoking it leaves the active intermediate in place, and both the dry run and the answer name it.
    const dry = await t.call("POST", `/v1/issuers/${previous}/revoke`, { token: t.ca.adminToken, body: { dryRun: true, reissue: true } });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.json.replacement).toBe(`active ${id}`);
    const revoked = await t.call("POST", `/v1/issuers/${previous}/revoke`, { token: t.ca.adminToken, body: { reason: "superseded" } });
    expect(revoked.status, revoked.text).toBe(202);
    expect(revoked.json).toMatchObject({ revoked: previous, replacement: id });
  });
});
