// A certificate has at most one live successor, and revoking it for keyCompromise revokes
// its successors too: a stolen key must not be able to renew itself into certificates
// that outlive its revocation. Real HTTPS, mTLS, SoftHSM and PostgreSQL.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addProvisioner, startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr } from "../support/tools.ts";

let t: TestApi;
let token: string;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
  token = await addProvisioner(t, { name: "chain", profiles: ["mtls"], names: ["DNS:.chain.example"], maxTtlSeconds: 7200 });
});
afterAll(async () => {
  await t?.stop();
});

interface Held {
  serial: string;
  key: string;
  clientCert: string;
}

const held = (json: { serial: string; certificate: string; chain: string[] }, key: string): Held => ({ serial: json.serial, key, clientCert: [json.certificate, ...json.chain.slice(0, -1)].join("") });

async function enrol(name: string): Promise<Held> {
  const csr = opensslCsr({ sans: [`DNS:${name}`] });
  const res = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem, ttlSeconds: 3600 } });
  expect(res.status, res.text).toBe(201);
  return held(res.json, csr.keyPem);
}

/** Renews over mTLS with `from`; with `rekeyFor`, onto a new key for that name. */
function renew(from: Held, rekeyFor?: string) {
  const csr = rekeyFor ? opensslCsr({ sans: [`DNS:${rekeyFor}`] }) : undefined;
  return { key: csr?.keyPem ?? from.key, answer: t.call("POST", "/v1/certificates/renew", { cert: from.clientCert, key: from.key, ...(csr ? { body: { csr: csr.csrPem } } : {}) }) };
}

const liveSuccessors = async (serial: string) =>
  (await t.ca.inventory.sql.query<{ serial: string }>(`SELECT serial FROM certificates WHERE predecessor_serial = $1 AND status IN ('pending', 'valid')`, [serial])).map((r) => r.serial);

describe("one live successor per certificate", () => {
  it("of two concurrent renewals (one onto a new key) exactly one succeeds; the other is 409 naming the winner", async () => {
    const a = await enrol("race.chain.example");
    const sameKey = renew(a);
    const newKey = renew(a, "race.chain.example");
    const answers = await Promise.all([sameKey.answer, newKey.answer]);
    expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
    const won = answers.find((r) => r.status === 201)!;
    const lost = answers.find((r) => r.status === 409)!;
    expect(lost.json.detail).toContain(`certificate ${a.serial} has already been renewed as ${won.json.serial}`);
    expect(await liveSuccessors(a.serial)).toEqual([won.json.serial]);
    expect(await t.ca.inventory.certificates.get(a.serial)).toMatchObject({ status: "valid", successorSerial: won.json.serial });
  });

  it("refuses a second renewal of an already-renewed certificate, with the same key or a new one", async () => {
    const a = await enrol("twice.chain.example");
    const first = await renew(a).answer;
    expect(first.status, first.text).toBe(201);
    for (const again of [renew(a), renew(a, "twice.chain.example")]) {
      const res = await again.answer;
      expect(res.status, res.text).toBe(409);
      expect(res.json.detail).toMatch(new RegExp(`^certificate ${a.serial} has already been renewed as ${first.json.serial}; `));
    }
    expect(await liveSuccessors(a.serial)).toEqual([first.json.serial]);
  });

  it("lets a certificate renew again once its successor is revoked as superseded", async () => {
    const a = await enrol("redo.chain.example");
    const b = await renew(a).answer;
    expect(b.status).toBe(201);
    expect((await t.call("POST", `/v1/certificates/${b.json.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "superseded" } })).status).toBe(200);
    const c = await renew(a).answer;
    expect(c.status, c.text).toBe(201);
    expect(await t.ca.inventory.certificates.get(a.serial)).toMatchObject({ successorSerial: c.json.serial });
  });
});

describe("keyCompromise follows the renewal chain", () => {
  it("revokes every live successor, transitively, with an audit row each; other reasons do not", async () => {
    const a = await enrol("stolen.chain.example");
    const bRes = renew(a, "stolen.chain.example"); // the thief's new key
    const b = held((await bRes.answer).json, bRes.key);
    const cRes = renew(b);
    const c = held((await cRes.answer).json, cRes.key);
    expect(await t.ca.inventory.certificates.get(c.serial)).toMatchObject({ status: "valid", predecessorSerial: b.serial });

    const res = await t.call("POST", `/v1/certificates/${a.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "keyCompromise" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.successorsRevoked).toEqual([b.serial, c.serial]);
    for (const serial of [a.serial, b.serial, c.serial]) {
      expect(await t.ca.inventory.certificates.get(serial)).toMatchObject({ status: "revoked", revocationReason: 1 });
      const audit = await t.ca.inventory.audit.recent(5, serial);
      expect(audit.filter((row) => row.action === "certificate.revoke" && row.outcome === "ok")).toHaveLength(1);
    }
    // what the OCSP responder answers from
    for (const serial of [b.serial, c.serial]) expect(await t.ca.inventory.ocspResponses.certificateStatus(serial)).toMatchObject({ status: "revoked", reason: 1 });
    // and the successor's key no longer authenticates
    const refused = await t.call("POST", "/v1/certificates/renew", { cert: c.clientCert, key: c.key });
    expect(refused.status).toBe(401);

    const d = await enrol("retired.chain.example");
    const e = await renew(d).answer;
    const superseded = await t.call("POST", `/v1/certificates/${d.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "superseded" } });
    expect(superseded.json.successorsRevoked).toEqual([]);
    expect(await t.ca.inventory.certificates.get(e.json.serial)).toMatchObject({ status: "valid" });
  });

  it("a renewal still being signed when its predecessor is revoked for keyCompromise is never released", async () => {
    const a = await enrol("inflight.chain.example");
    const record = (await t.ca.inventory.certificates.get(a.serial))!;
    const successor = randomBytes(16).toString("hex");
    // the renewal's intent is recorded; the token has not signed yet
    await t.ca.inventory.certificates.recordIntent({
      ...record,
      serial: successor,
      requester: `mtls:${a.serial}`,
      provisionerId: record.provisionerId ?? undefined,
      predecessorSerial: a.serial,
      onlyFromActiveIssuer: true,
    });
    const res = await t.call("POST", `/v1/certificates/${a.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "keyCompromise" } });
    expect(res.status, res.text).toBe(200);
    expect(await t.ca.inventory.certificates.get(successor)).toMatchObject({ status: "failed" });
    // the signature arrives: it is not stored as valid, so never handed out
    await expect(t.ca.inventory.certificates.markIssued(successor, Buffer.from("signed"), { actor: "test", action: "certificate.renew", target: successor })).rejects.toThrow(/not pending/);
    expect(await t.ca.inventory.certificates.get(successor)).toMatchObject({ status: "failed", der: null });
  });

  it("a renewal whose predecessor was revoked (any reason) while it was signed is not stored", async () => {
    const a = await enrol("late.chain.example");
    const record = (await t.ca.inventory.certificates.get(a.serial))!;
    const successor = randomBytes(16).toString("hex");
    await t.ca.inventory.certificates.recordIntent({
      ...record,
      serial: successor,
      requester: `mtls:${a.serial}`,
      provisionerId: record.provisionerId ?? undefined,
      predecessorSerial: a.serial,
      onlyFromActiveIssuer: true,
    });
    expect((await t.call("POST", `/v1/certificates/${a.serial}/revoke`, { token: t.ca.adminToken, body: { reason: "cessationOfOperation" } })).status).toBe(200);
    await expect(t.ca.inventory.certificates.markIssued(successor, Buffer.from("signed"), { actor: "test", action: "certificate.renew", target: successor })).rejects.toThrow();
    expect(await t.ca.inventory.certificates.get(successor)).toMatchObject({ status: "pending", der: null });
  });
});
