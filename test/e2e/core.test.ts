// The CA core in-process, on a real token and PostgreSQL: concurrency, start-up refusals,
// intent-before-signature.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr, opensslVerify } from "../support/tools.ts";
import { openCa, StartupCheckError, reconcilePendingIntents, clockSkewSeconds } from "@pki/authority";
import { parseCsr, toPem } from "@pki/x509";
import { Token } from "@pki/hsm";

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa({ database: "postgres" });
});
afterAll(async () => {
  await ca?.cleanup();
});

const requester = { kind: "operator" as const, actor: "test" };

describe("issuance", () => {
  it("signs 200 requests at once with distinct serials, every one stored and verifiable", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=load.example.com" }).csrPem);
    const issued = await Promise.all(Array.from({ length: 200 }, () => ca.runtime.authority.issue({ csr, profile: "mtls", requester })));
    const serials = new Set(issued.map((c) => c.serial));
    expect(serials.size).toBe(200);
    for (const serial of serials) expect(serial).toMatch(/^01[0-9a-f]{32}$/);
    const rows = await ca.inventory.sql.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM certificates GROUP BY status");
    expect(rows).toEqual([{ status: "valid", n: "200" }]);
    const root = toPem(ca.runtime.keyring.active().chain.at(-1)!);
    const sample = issued[137]!;
    expect(opensslVerify(sample.pem, root, sample.chain.join("")).status).toBe(0);
    const x509 = new X509Certificate(sample.der);
    expect(x509.checkIssued(new X509Certificate(ca.runtime.keyring.active().record.certificateDer))).toBe(true);
  });

  it("records the planned certificate before signing and the signed one after", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=intent.example.com" }).csrPem);
    let seenDuringSign: { status: string; der: Buffer | null } | undefined;
    const active = ca.runtime.keyring.active();
    const realSign = active.signer.sign;
    // Observe the inventory at the moment the token is asked to sign.
    (active.signer as { sign: typeof realSign }).sign = async (data) => {
      const pending = await ca.inventory.sql.query<{ status: string; der: Buffer | null; tbs_der: Buffer }>("SELECT status, der, tbs_der FROM certificates WHERE tbs_der = $1", [data]);
      seenDuringSign = pending[0];
      return realSign(data);
    };
    try {
      const issued = await ca.runtime.authority.issue({ csr, profile: "server", requester });
      expect(seenDuringSign).toMatchObject({ status: "pending", der: null });
      const row = await ca.inventory.certificates.get(issued.serial);
      expect(row?.status).toBe("valid");
      expect(row?.der?.equals(issued.der)).toBe(true);
    } finally {
      (active.signer as { sign: typeof realSign }).sign = realSign;
    }
  });

  it("marks the intent failed and signs nothing when the token refuses", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=tokenfail.example.com" }).csrPem);
    const active = ca.runtime.keyring.active();
    const realSign = active.signer.sign;
    (active.signer as { sign: typeof realSign }).sign = async () => {
      throw new Error("CKR_DEVICE_ERROR");
    };
    try {
      await expect(ca.runtime.authority.issue({ csr, profile: "mtls", requester })).rejects.toThrow(/the token could not sign: CKR_DEVICE_ERROR/);
    } finally {
      (active.signer as { sign: typeof realSign }).sign = realSign;
    }
    const rows = await ca.inventory.sql.query<{ status: string; der: Buffer | null }>("SELECT status, der FROM certificates WHERE subject = 'CN=tokenfail.example.com'");
    expect(rows).toEqual([{ status: "failed", der: null }]);
  });

  it("never issues past the issuer's notAfter", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=long.example.com" }).csrPem);
    const issuerEnd = ca.runtime.keyring.active().facts.notAfter;
    const config = ca.config();
    const far = await openCa({ ...config, ca: { ...config.ca, maxTtlSeconds: 10 * 365 * 86400 } }, { now: () => new Date() }, ca.inventory);
    try {
      const issued = await far.authority.issue({ csr, profile: "mtls", ttlSeconds: 5 * 365 * 86400, requester });
      expect(issued.notAfter.getTime()).toBe(issuerEnd.getTime());
    } finally {
      await far.close();
    }
  });
});

describe("start-up checks", () => {
  it("refuses an active intermediate that has expired or is not yet valid", async () => {
    const end = ca.runtime.keyring.active().facts.notAfter;
    await expect(openCa(ca.config(), { now: () => new Date(end.getTime() + 1000) }, ca.inventory)).rejects.toThrow(/the active intermediate expired at/);
    await expect(openCa(ca.config(), { now: () => new Date("2000-01-01T00:00:00Z") }, ca.inventory)).rejects.toThrow(/is not valid until/);
  });

  it("refuses when the token key does not match the issuer certificate", async () => {
    const config = ca.config();
    const token = Token.open({ modulePath: config.hsm.modulePath!, label: config.hsm.issuing.label, pin: config.hsm.issuing.pin!, sessions: 1 });
    const impostor = await token.generateKeyPair("impostor", "ECDSA-P256");
    token.close();
    const active = ca.runtime.keyring.active().record;
    await ca.inventory.sql.query("UPDATE issuers SET key_uri = $1 WHERE id = $2", [impostor.uri, active.id]);
    try {
      const attempt = openCa(config, { now: () => new Date() }, ca.inventory);
      await expect(attempt).rejects.toBeInstanceOf(StartupCheckError);
      await expect(openCa(config, { now: () => new Date() }, ca.inventory)).rejects.toThrow(
        `issuer ${active.id}: the token key ${impostor.uri} does not match the public key in the issuer certificate`,
      );
    } finally {
      await ca.inventory.sql.query("UPDATE issuers SET key_uri = $1 WHERE id = $2", [active.keyUri, active.id]);
    }
  });
});

describe("reconciliation", () => {
  it("closes intents a crash left pending, and only those", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=crash.example.com" }).csrPem);
    // A crash between record and store leaves exactly this: a pending row with its TBS and no DER.
    const issued = await ca.runtime.authority.issue({ csr, profile: "mtls", requester });
    await ca.inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL, created_at = now() - interval '10 minutes' WHERE serial = $1", [issued.serial]);
    const fresh = await ca.runtime.authority.issue({ csr, profile: "mtls", requester });
    await ca.inventory.sql.query("UPDATE certificates SET status = 'pending', der = NULL WHERE serial = $1", [fresh.serial]);

    const closed = await reconcilePendingIntents(ca.inventory, { now: () => new Date() });
    expect(closed).toEqual([issued.serial]);
    expect((await ca.inventory.certificates.get(issued.serial))?.status).toBe("failed");
    expect((await ca.inventory.certificates.get(fresh.serial))?.status).toBe("pending"); // still within its grace period
    expect((await ca.inventory.audit.recent(5, issued.serial)).map((a) => a.action)).toContain("certificate.reconcile");
    expect(await reconcilePendingIntents(ca.inventory, { now: () => new Date() })).toEqual([]);
  });

  it("records every CA certificate as an intent before its signature, and closes one a crashed ceremony left pending", async () => {
    const intents = await ca.inventory.sql.query<{ id: string; role: string; status: string; tbs_der: Buffer }>("SELECT id, role, status, tbs_der FROM issuer_intents ORDER BY created_at");
    const issuers = await ca.inventory.issuers.list();
    expect(intents.map((i) => [i.role, i.status]).sort()).toEqual([
      ["intermediate", "issued"],
      ["root", "issued"],
    ]);
    for (const intent of intents) {
      const issuer = issuers.find((i) => i.id === intent.id)!;
      // The bytes planned are exactly the bytes signed: the certificate's tbsCertificate.
      const der = issuer.certificateDer;
      const tbsStart = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
      expect(der.includes(intent.tbs_der)).toBe(true);
      expect(der.subarray(tbsStart, tbsStart + intent.tbs_der.length).equals(intent.tbs_der)).toBe(true);
    }
    await ca.inventory.sql.query(
      "INSERT INTO issuer_intents (id, hierarchy, role, serial, key_uri, tbs_der, created_at) VALUES ('crashed-int', 'default', 'intermediate', '01ff', 'pkcs11:object=x', '\\x30', now() - interval '10 minutes')",
    );
    await reconcilePendingIntents(ca.inventory, { now: () => new Date() });
    expect((await ca.inventory.sql.query<{ status: string }>("SELECT status FROM issuer_intents WHERE id = 'crashed-int'"))[0]?.status).toBe("failed");
    expect((await ca.inventory.audit.recent(5, "crashed-int")).map((a) => a.action)).toEqual(["issuer.reconcile"]);
  });

  it("measures clock skew against the database", async () => {
    expect(Math.abs(await clockSkewSeconds(ca.inventory, { now: () => new Date() }))).toBeLessThan(5);
    expect(await clockSkewSeconds(ca.inventory, { now: () => new Date(Date.now() + 3_600_000) })).toBeGreaterThan(3590);
  });
});
