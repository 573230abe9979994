// The re-issue after an emergency revocation of an intermediate, with the issuing API on
// two node:cluster workers (`apps/api`, PKI_API_WORKERS=2, on PostgreSQL): its progress is
// kept in the inventory, so whichever worker a poll lands on answers it, and two revokes
// with reissue landing on different workers at once start one run, not two.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callApi } from "../support/api.ts";
import { type ApiOnWorkers, startApiOnWorkers } from "../support/api-workers.ts";
import { opensslCsr, pki } from "../support/tools.ts";

/** Enough that the re-issue is still running when the second revoke arrives, and polls see it move. */
const FLEET = 120;

let t: ApiOnWorkers;
let provisionerToken: string;
let adminToken: string;

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) => t.until(what, probe);

// callApi opens a fresh connection per request (agent: false), so the primary hands
// successive requests to the workers in turn.
const call = (method: string, urlPath: string, body?: unknown) => callApi(t.apiUrl, t.rootPem, method, urlPath, { token: adminToken, ...(body === undefined ? {} : { body }) });

beforeAll(async () => {
  t = await startApiOnWorkers();
  const added = pki(["provisioner", "add", "fleet", "--names", "DNS:.fleet.example"], t.env);
  expect(added.status, added.stderr).toBe(0);
  provisionerToken = added.stdout.trim();
  const operator = pki(["admin", "add", "responder"], t.env);
  expect(operator.status, operator.stderr).toBe(0);
  adminToken = operator.stdout.trim();
  await until("two workers", () => (t.workerPids().length === 2 ? true : undefined));
  // One CSR, many certificates: re-issue keeps each certificate's key, so they need not differ.
  const csr = opensslCsr({ sans: ["DNS:svc.fleet.example"] }).csrPem;
  for (let batch = 0; batch < FLEET / 12; batch++) {
    const answers = await Promise.all(Array.from({ length: 12 }, () => callApi(t.apiUrl, t.rootPem, "POST", "/v1/certificates", { token: provisionerToken, body: { csr, ttlSeconds: 86_400 } })));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
  }
}, 300_000);

afterAll(async () => {
  await t?.stop();
});

describe("re-issue after revoking an intermediate, PKI_API_WORKERS=2", () => {
  it("starts one run for two concurrent revokes, and every worker reports its progress until done", async () => {
    const issuers = (await call("GET", "/v1/issuers")).json as { id: string; role: string; status: string; liveCertificates: number }[];
    const compromised = issuers.find((i) => i.role === "intermediate" && i.status === "active")!;
    expect(compromised.liveCertificates).toBe(FLEET);
    expect((await call("GET", `/v1/issuers/${compromised.id}/reissue`)).status).toBe(404);

    // Two connections at once: the workers take one each.
    const revokes = await Promise.all([0, 1].map(() => call("POST", `/v1/issuers/${compromised.id}/revoke`, { reason: "keyCompromise", reissue: true })));
    expect(revokes.map((r) => r.status).sort(), revokes.map((r) => r.text).join("\n")).toEqual([202, 409]);
    const started = revokes.find((r) => r.status === 202)!;
    expect(started.json).toMatchObject({ revoked: compromised.id, affected: FLEET, replacement: expect.any(String) });
    const refused = revokes.find((r) => r.status === 409)!;
    expect(refused.json.detail).toMatch(/being re-issued right now/);

    const seen: { status: number; reissued: number; done: boolean; stalled: boolean }[] = [];
    let last: Record<string, unknown> = {};
    while (!last.done) {
      const poll = await call("GET", `/v1/issuers/${compromised.id}/reissue`);
      expect(poll.status, poll.text).toBe(200);
      last = poll.json;
      seen.push({ status: poll.status, reissued: poll.json.reissued, done: poll.json.done, stalled: poll.json.stalled });
      expect(seen.length, "still polling after 3000 answers").toBeLessThan(3000);
      await new Promise((r) => setTimeout(r, 50));
    }
    const reissuedSeen = seen.map((s) => s.reissued);
    expect(reissuedSeen, "reissued went backwards between polls").toEqual([...reissuedSeen].sort((a, b) => a - b));
    expect(seen.every((s) => !s.stalled)).toBe(true);
    expect(last).toMatchObject({ total: FLEET, reissued: FLEET, failedCount: 0, failed: [], done: true, stalled: false, error: null, actor: "admin:responder" });

    // Every certificate has its successor from the replacement, each re-issued once.
    // A worker that did not run the re-issue counts again once its figure is a few seconds old.
    await expect
      .poll(async () => ((await call("GET", "/v1/issuers")).json as { id: string; liveCertificates: number }[]).find((i) => i.id === started.json.replacement)!.liveCertificates, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(FLEET);
    const audit = await call("GET", `/v1/audit?actor=admin:responder&action=issuer.revoke`);
    expect(audit.json.items).toHaveLength(1);

    // Once done, a new revoke with reissue starts a new run (nothing is left to re-issue).
    const again = await call("POST", `/v1/issuers/${compromised.id}/revoke`, { reissue: true });
    expect(again.status, again.text).toBe(202);
    expect(again.json.affected).toBe(0);
    const rerun = await until("the second run to finish", async () => {
      const poll = await call("GET", `/v1/issuers/${compromised.id}/reissue`);
      return poll.json.done ? poll.json : undefined;
    });
    expect(rerun).toMatchObject({ total: 0, reissued: 0, done: true });
  });
});
