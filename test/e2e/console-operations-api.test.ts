// The operator tasks the console does besides inventory and issuers, over real HTTPS: the
// scheduler (status, run a job now), CRLs (status, publish now), the health checks of
// pki doctor and operators' admin tokens; each against the `pki` command that shares its
// code. Its own CA: these tests make many unauthenticated requests, which the
// failed-login limiter of another file's API would count.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type ApiResponse, type TestApi } from "../support/api.ts";
import { asSession, consoleLogin, sessionCookieOf } from "../support/console.ts";
import { pki } from "../support/tools.ts";

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", authFailureLimit: 100_000 });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

const login = (token = t.ca.adminToken) => consoleLogin(t, token);

describe("operator tasks: scheduler, CRLs, health checks, operators (the console twins of pki commands)", () => {
  const problem = (res: ApiResponse) => {
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    return res.json.detail as string;
  };

  it("every new route refuses the unauthenticated (401) and a session's state change without the CSRF header (403)", async () => {
    const s = await login();
    for (const [method, path] of [
      ["GET", "/v1/scheduler"],
      ["POST", "/v1/scheduler/jobs/issuer-health/run"],
      ["GET", "/v1/crls"],
      ["POST", "/v1/crls/publish"],
      ["GET", "/v1/doctor"],
      ["GET", "/v1/admins"],
      ["POST", "/v1/admins"],
      ["DELETE", "/v1/admins/nobody"],
    ] as const) {
      const body = path === "/v1/admins" && method === "POST" ? { body: { name: "csrf-probe" } } : path === "/v1/crls/publish" ? { body: {} } : {};
      const anonymous = await t.call(method, path, body);
      expect(anonymous.status, `${method} ${path}`).toBe(401);
      problem(anonymous);
      if (method === "GET") expect((await t.call(method, path, asSession(s))).status, `${method} ${path}`).toBe(200);
      else expect((await t.call(method, path, { ...asSession(s), ...body })).status, `${method} ${path}`).toBe(403);
    }
    expect((await t.call("GET", "/v1/admins", { token: t.ca.adminToken })).json.map((a: { name: string }) => a.name)).not.toContain("csrf-probe");
  });

  it("runs a scheduler job now: its last run changes, the run is audited under the operator; an unknown job is a 400 naming it", async () => {
    const before = (await t.call("GET", "/v1/scheduler", { token: t.ca.adminToken })).json;
    const jobs = before.jobs.map((j: { job: string }) => j.job);
    expect(jobs).toEqual(expect.arrayContaining(["renewal", "issuer-health", "expiry-alerts"]));
    const lastBefore = before.jobs.find((j: { job: string }) => j.job === "issuer-health").lastRun?.id ?? null;

    const unknown = await t.call("POST", "/v1/scheduler/jobs/reticulate-splines/run", { token: t.ca.adminToken });
    expect(unknown.status).toBe(400);
    expect(problem(unknown)).toMatch(/^no job 'reticulate-splines'; jobs are .*issuer-health/);

    const s = await login();
    const ran = await t.call("POST", "/v1/scheduler/jobs/issuer-health/run", asSession(s, { "x-csrf-token": s.csrf }));
    expect(ran.status, ran.text).toBe(200);
    expect(ran.json).toMatchObject({ job: "issuer-health", outcome: "ok", counts: expect.any(Object) });
    const after = (await t.call("GET", "/v1/scheduler?runs=5", { token: t.ca.adminToken })).json;
    const job = after.jobs.find((j: { job: string }) => j.job === "issuer-health");
    expect(job.lastRun.id).not.toBe(lastBefore);
    expect(job.lastRun).toMatchObject({ outcome: "ok", runner: expect.stringMatching(/^admin:bootstrap:\d+$/) });
    expect(after.runs.length).toBeLessThanOrEqual(5);
    expect((await t.call("GET", "/v1/scheduler?runs=0", { token: t.ca.adminToken })).status).toBe(400);
    const audited = await t.call("GET", "/v1/audit?action=scheduler.run&target=issuer-health", { token: t.ca.adminToken });
    expect(audited.json.items[0]).toMatchObject({ actor: "admin:bootstrap", outcome: "ok" });

    // The CLI shows the same run (same function underneath).
    const status = pki(["scheduler", "status", "--runs", "3"], t.ca.env);
    expect(status.stdout).toMatch(/issuer-health .*last ok/);
    expect(status.stdout).toMatch(/issuer-health\s+ok\s+admin:bootstrap:/);
  });

  it("publishes CRLs now: each issuer's CRL number goes up; a root points to its ceremony, an unknown issuer is 404", async () => {
    const numberOf = async (issuerId: string) => {
      const states = (await t.call("GET", "/v1/crls", { token: t.ca.adminToken })).json as { issuerId: string; full: { number: string } | null }[];
      return BigInt(states.find((x) => x.issuerId === issuerId)?.full?.number ?? -1);
    };
    const issuers = (await t.call("GET", "/v1/issuers")).json as { id: string; role: string; status: string }[];
    const active = issuers.find((i) => i.role === "intermediate" && i.status === "active")!;
    const root = issuers.find((i) => i.role === "root")!;
    const before = await numberOf(active.id);

    const s = await login();
    const all = await t.call("POST", "/v1/crls/publish", { ...asSession(s, { "x-csrf-token": s.csrf }), body: {} });
    expect(all.status, all.text).toBe(200);
    const mine = all.json.published.find((p: { issuerId: string }) => p.issuerId === active.id);
    expect(BigInt(mine.full.number)).toBeGreaterThan(before);
    expect(await numberOf(active.id)).toBe(BigInt(mine.full.number));
    const one = await t.call("POST", "/v1/crls/publish", { token: t.ca.adminToken, body: { issuerId: active.id } });
    expect(one.json.published.map((p: { issuerId: string }) => p.issuerId)).toEqual([active.id]);
    expect(BigInt(one.json.published[0].full.number)).toBeGreaterThan(BigInt(mine.full.number));

    const rootRefused = await t.call("POST", "/v1/crls/publish", { token: t.ca.adminToken, body: { issuerId: root.id } });
    expect(rootRefused.status).toBe(400);
    expect(problem(rootRefused)).toMatch(/pki crl sign-root/);
    const unknown = await t.call("POST", "/v1/crls/publish", { token: t.ca.adminToken, body: { issuerId: "no-such-issuer" } });
    expect(unknown.status).toBe(404);
    expect(problem(unknown)).toMatch(/no issuer no-such-issuer/);
    const extra = await t.call("POST", "/v1/crls/publish", { token: t.ca.adminToken, body: { issuer: active.id } });
    expect(extra.status).toBe(400);
    expect(problem(extra)).toMatch(/unknown field 'issuer'/);

    const audited = await t.call("GET", `/v1/audit?action=crl.publish&target=${active.id}`, { token: t.ca.adminToken });
    expect(audited.json.items.slice(0, 2).map((e: { actor: string }) => e.actor)).toEqual(["admin:bootstrap", "admin:bootstrap"]);
    const cli = pki(["crl", "publish", "--issuer", active.id], t.ca.env);
    expect(cli.status, cli.stderr).toBe(0);
    expect(await numberOf(active.id)).toBeGreaterThan(BigInt(one.json.published[0].full.number));
  });

  it("runs the health checks of pki doctor: the token signs with each issuer key, the database answers", async () => {
    const res = await t.call("GET", "/v1/doctor", { token: t.ca.adminToken });
    expect(res.status, res.text).toBe(200);
    const checks = res.json.checks as { name: string; status: string; detail: string }[];
    const active = ((await t.call("GET", "/v1/issuers")).json as { id: string; role: string; status: string }[]).find((i) => i.role === "intermediate" && i.status === "active")!;
    expect(checks.find((c) => c.name === "database")).toMatchObject({ status: "ok" });
    expect(checks.find((c) => c.name === `token key of ${active.id}`)).toMatchObject({ status: "ok", detail: expect.stringMatching(/signed a test challenge/) });
    expect(checks.find((c) => c.name === "active intermediate (default)")).toMatchObject({ status: "ok" });
    expect(checks.map((c) => c.name)).toEqual(expect.arrayContaining(["CRLs", "scheduler"]));
    // The CLI prints the same checks.
    const cli = pki(["doctor"], t.ca.env);
    for (const name of ["database", `token key of ${active.id}`, "active intermediate (default)", "CRLs", "scheduler"]) expect(cli.stdout).toContain(`  ${name}  `);

    // A job long past its due time with nobody holding it means no scheduler runs: a warning naming it.
    await t.ca.inventory.sql.query(`UPDATE scheduler_jobs SET next_due_at = now() - interval '1 hour', lease_holder = NULL WHERE job = 'issuer-health'`);
    const overdue = (await t.call("GET", "/v1/doctor", { token: t.ca.adminToken })).json.checks.find((c: { name: string }) => c.name === "scheduler");
    expect(overdue).toMatchObject({ status: "warn", detail: expect.stringMatching(/overdue \(is a scheduler running\?\): issuer-health/) });
    await t.ca.inventory.sql.query(`UPDATE scheduler_jobs SET next_due_at = now() + interval '1 hour' WHERE job = 'issuer-health'`);
  });

  it("lists removed provisioners with all=true (pki provisioner list --all)", async () => {
    const created = await t.call("POST", "/v1/provisioners", { token: t.ca.adminToken, body: { name: "gone-soon", profiles: ["mtls"], names: ["DNS:.gone.example"], maxTtlSeconds: 3600 } });
    expect(created.status, created.text).toBe(201);
    expect((await t.call("DELETE", "/v1/provisioners/gone-soon", { token: t.ca.adminToken })).status).toBe(200);
    const names = async (query: string) => ((await t.call("GET", `/v1/provisioners${query}`, { token: t.ca.adminToken })).json as { name: string }[]).map((p) => p.name);
    expect(await names("")).not.toContain("gone-soon");
    expect(await names("?all=false")).not.toContain("gone-soon");
    const all = (await t.call("GET", "/v1/provisioners?all=true", { token: t.ca.adminToken })).json as { name: string; removedAt?: string }[];
    expect(all.find((p) => p.name === "gone-soon")).toMatchObject({ removedAt: expect.any(String) });
    const bad = await t.call("GET", "/v1/provisioners?all=yes", { token: t.ca.adminToken });
    expect(bad.status).toBe(400);
    expect(problem(bad)).toMatch(/all: must be true or false/);
  });

  it("adds an operator (token once, no-store), who logs in; bad and taken names are refused; removal ends their session", async () => {
    const s = await login();
    const csrf = asSession(s, { "x-csrf-token": s.csrf });
    const added = await t.call("POST", "/v1/admins", { ...csrf, body: { name: "carol" } });
    expect(added.status, added.text).toBe(201);
    expect(added.headers["cache-control"]).toBe("no-store");
    expect(added.json).toEqual({ name: "carol", token: expect.stringMatching(/^pki_admin_/) });
    const taken = await t.call("POST", "/v1/admins", { ...csrf, body: { name: "carol" } });
    expect(taken.status).toBe(409);
    expect(problem(taken)).toMatch(/already exists/);
    const bad = await t.call("POST", "/v1/admins", { ...csrf, body: { name: "Carol <b>" } });
    expect(bad.status).toBe(400);
    expect(problem(bad)).toMatch(/'Carol <b>' is not an admin name/);
    expect((await t.call("POST", "/v1/admins", { ...csrf, body: {} })).status).toBe(400);

    const carol = await login(added.json.token);
    expect(carol.res.json.operator).toBe("carol");
    const listed = (await t.call("GET", "/v1/admins", asSession(carol))).json;
    expect(listed.find((a: { name: string }) => a.name === "carol")).toMatchObject({ revokedAt: null });

    const removed = await t.call("DELETE", "/v1/admins/carol", csrf);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json).toEqual({ removed: "carol", sessionsEnded: 1 });
    expect((await t.call("GET", "/v1/overview", asSession(carol))).status).toBe(401);
    expect((await t.call("POST", "/v1/console/session", { body: { token: added.json.token } })).status).toBe(401);
    const again = await t.call("DELETE", "/v1/admins/carol", csrf);
    expect(again.status).toBe(404);
    expect(problem(again)).toMatch(/no live admin named 'carol'/);
    // An operator may remove themselves: their cookie is cleared and the session is over.
    const erinToken = (await t.call("POST", "/v1/admins", { token: t.ca.adminToken, body: { name: "erin" } })).json.token as string;
    const erin = await login(erinToken);
    const self = await t.call("DELETE", "/v1/admins/erin", asSession(erin, { "x-csrf-token": erin.csrf }));
    expect(self.status, self.text).toBe(200);
    expect(sessionCookieOf(self).attributes).toContain("Max-Age=0");
    expect((await t.call("GET", "/v1/overview", asSession(erin))).status).toBe(401);
    const audited = await t.call("GET", "/v1/audit?target=carol&action=admin.", { token: t.ca.adminToken });
    // the taken name's refusal is recorded under the action it tried, denied
    expect(audited.json.items.map((e: { action: string; actor: string; outcome: string }) => [e.action, e.actor, e.outcome])).toEqual([
      ["admin.remove", "admin:bootstrap", "ok"],
      ["admin.create", "admin:bootstrap", "denied"],
      ["admin.create", "admin:bootstrap", "ok"],
    ]);
  });
});
