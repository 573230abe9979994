// Emergency rotation, several hierarchies, scheduled activation and the end of a retired
// intermediate, driven the way an operator does it: the `pki` CLI as a separate process,
// the scheduler's issuer-lifecycle job, checked with openssl.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { API_LISTENER_REQUESTER, successorRequester, type IssuedCertificate } from "@pki/authority";
import { CrlPublisher, OcspSigner } from "@pki/revocation";
import { parseCsr, toPem } from "@pki/x509";
import { createLogger } from "@pki/logger";
import { createScheduler } from "@pki/scheduler";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr, opensslVerify, pki, run, scratchDir, writeTemp } from "../support/tools.ts";
import { HOUR, TravelClock } from "../support/scheduler-kit.ts";

describe("emergency rotation, hierarchies and the issuer lifecycle", () => {
  let ca: TestCa;
  const dir = scratchDir();
  const issue = (cn: string, hierarchy?: string, autoRenew = false) =>
    ca.runtime.authority.issue({
      csr: parseCsr(opensslCsr({ subject: `/CN=${cn}`, sans: [`DNS:${cn}`] }).csrPem),
      profile: "mtls",
      ttlSeconds: 3600,
      autoRenew,
      requester: { kind: "operator", actor: "test", ...(hierarchy ? { hierarchy } : {}) },
    });
  const crlPem = (der: Buffer) => run("openssl", ["crl", "-inform", "DER"], { input: der }).stdout;

  beforeAll(async () => {
    ca = await startTestCa({ env: { PKI_KEYRING_RELOAD_SECONDS: "0" } });
  });
  afterAll(async () => {
    await ca?.cleanup();
  });

  it("pki issuers revoke: revokes a compromised intermediate on the root CRL, activates a replacement, lists and re-issues its certificates", async () => {
    const compromised = ca.runtime.keyring.active().record;
    const leaves: IssuedCertificate[] = [];
    for (const cn of ["a.emergency.test", "b.emergency.test", "c.emergency.test"]) leaves.push(await issue(cn, undefined, cn.startsWith("a")));
    // The CA's own certificates under the same intermediate are not re-issued for the
    // operator: the OCSP responder's (the publisher makes the replacement its own) and the
    // API listener's (the API renews it when its issuer is revoked).
    const signer = new OcspSigner({ inventory: ca.inventory, keyring: ca.runtime.keyring, authority: ca.runtime.authority, config: ca.runtime.config, clock: ca.runtime.clock });
    await signer.responderFor(compromised.id);
    await signer.stop();
    await ca.runtime.authority.issue({
      csr: parseCsr(opensslCsr({ sans: ["DNS:api.emergency.test"] }).csrPem),
      profile: "server",
      ttlSeconds: 3600,
      requester: { kind: "operator", actor: API_LISTENER_REQUESTER },
    });

    const result = pki(["issuers", "revoke", compromised.id, "--reason", "keyCompromise", "--reissue", "--json"], ca.env);
    expect(result.stderr).not.toMatch(/^pki:/m);
    expect(result.status).toBe(0);
    const listed = result.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { serial: string });
    expect(listed.map((l) => l.serial).sort()).toEqual(leaves.map((l) => l.serial).sort());
    expect(result.stderr.match(/re-issued [0-9a-f]+ as [0-9a-f]+/g)).toHaveLength(3);

    const after = await ca.inventory.issuers.get(compromised.id);
    expect(after).toMatchObject({ status: "retired", revocationReason: 1 });
    expect(after!.revokedAt).toBeInstanceOf(Date);
    const replacement = await ca.inventory.issuers.active("default", "intermediate");
    expect(replacement!.id).not.toBe(compromised.id);
    // made the same day, yet each CA certificate has a subject of its own, so a relying
    // party matching CRLs by issuer name cannot take the replacement's CRL for this one's
    expect(replacement!.subject).not.toBe(compromised.subject);
    // operators see it as revoked, not retired
    const listedIssuers = pki(["issuers", "list"], ca.env).stdout.split("\n");
    expect(listedIssuers.find((line) => line.startsWith(compromised.id))).toMatch(/\srevoked\s/);
    // chain.pem now holds the replacement: the README's openssl verify works at once
    const chainPem = readFileSync(path.join(ca.dataDir, "chain.pem"), "utf8");
    expect(chainPem.startsWith(toPem(replacement!.certificateDer))).toBe(true);
    const audit = (await ca.inventory.audit.recent(200)).map((a) => `${a.action}:${a.target}`);
    expect(audit).toContain(`issuer.revoke:${compromised.id}`);
    expect(audit).toContain(`issuer.activate:${replacement!.id}`);

    // the running keyring follows: new issuance comes from the replacement
    await ca.runtime.keyring.reload();
    expect((await issue("d.emergency.test")).issuerId).toBe(replacement!.id);

    const root = (await ca.inventory.issuers.get(compromised.parentId!))!;
    const rootPem = toPem(root.certificateDer);
    const rootCrl = await ca.inventory.crls.read(root.id, "full");
    expect(rootCrl).toBeDefined();
    const rootCrlText = run("openssl", ["crl", "-inform", "DER", "-noout", "-text"], { input: rootCrl!.der }).stdout.toLowerCase();
    expect(rootCrlText).toContain(compromised.serial.replace(/^0+/, ""));
    expect(rootCrlText).toContain("key compromise");

    // path validation with every CRL: old leaves fail (their intermediate is revoked), re-issued ones pass
    const publisher = new CrlPublisher({ inventory: ca.inventory, keyring: ca.runtime.keyring, config: ca.runtime.config, clock: ca.runtime.clock });
    await publisher.publishFull(compromised.id);
    await publisher.publishFull(replacement!.id);
    await publisher.stop();
    const crls = writeTemp(
      "all-crls.pem",
      crlPem(rootCrl!.der) + crlPem((await ca.inventory.crls.read(compromised.id, "full"))!.der) + crlPem((await ca.inventory.crls.read(replacement!.id, "full"))!.der),
      dir,
    );
    const intermediates = toPem(compromised.certificateDer) + toPem(replacement!.certificateDer);
    for (const leaf of leaves) {
      const old = opensslVerify(leaf.pem, rootPem, intermediates, ["-crl_check_all", "-CRLfile", crls]);
      expect(old.stdout + old.stderr).toMatch(/certificate revoked/);
      const successorSerial = (await ca.inventory.certificates.get(leaf.serial))!.successorSerial!;
      const successor = (await ca.inventory.certificates.get(successorSerial))!;
      expect(successor.issuerId).toBe(replacement!.id);
      expect(successor.sans).toEqual(leaf.sans);
      const fresh = opensslVerify(toPem(successor.der!), rootPem, intermediates, ["-crl_check_all", "-CRLfile", crls]);
      expect(fresh.stdout + fresh.stderr).toMatch(/: OK/);
    }

    // the command can be run again (say after a re-issue that failed half way): the
    // revocation stands and only what still lacks a successor is listed and re-issued
    const again = pki(["issuers", "revoke", compromised.id, "--reissue", "--json"], ca.env);
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/already revoked/);
    expect(again.stdout.trim()).toBe("");
    expect(again.stderr).not.toMatch(/re-issued/);
  });

  it("a process whose keyring has not seen another process's rotation or revocation never signs with the old intermediate", async () => {
    // this runtime's keyring does not reload by itself (PKI_KEYRING_RELOAD_SECONDS=0)
    const before = ca.runtime.keyring.active().record;
    const rotated = pki(["issuers", "rotate"], ca.env);
    expect(rotated.status, rotated.stderr).toBe(0);
    expect(ca.runtime.keyring.active().record.id).toBe(before.id); // still the stale view
    const afterRotation = await issue("stale-rotation.emergency.test");
    expect(afterRotation.issuerId).not.toBe(before.id);
    expect((await ca.inventory.issuers.get(afterRotation.issuerId))!.status).toBe("active");

    const compromised = ca.runtime.keyring.active().record;
    const revoked = pki(["issuers", "revoke", compromised.id, "--reason", "keyCompromise"], ca.env);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(ca.runtime.keyring.active().record.id).toBe(compromised.id); // still the stale view
    const afterRevocation = await issue("stale-revocation.emergency.test");
    expect(afterRevocation.issuerId).not.toBe(compromised.id);
    // and nothing under the revoked intermediate was even planned after its revocation
    const chained = await ca.inventory.certificateScans.chainedTo(compromised.id, new Date());
    expect(chained.map((c) => c.serial)).not.toContain(afterRevocation.serial);
  });

  it("keeps hierarchies apart: pki init --hierarchy partners makes a second root whose certificates do not chain to the first", async () => {
    const defaultFiles = ["root.pem", "chain.pem"].map((f) => readFileSync(path.join(ca.dataDir, f), "utf8"));
    const init = pki(["init", "--hierarchy", "partners"], ca.env);
    expect(init.status).toBe(0);
    expect(init.stdout).toMatch(/root partners-root-\S+ created/);
    // each hierarchy has its own trust files; the README's root.pem stays the default one
    expect(["root.pem", "chain.pem"].map((f) => readFileSync(path.join(ca.dataDir, f), "utf8"))).toEqual(defaultFiles);
    expect(pki(["init", "--hierarchy", "../x"], ca.env).stderr).toMatch(/hierarchy name '..\/x' must be/);
    await ca.runtime.keyring.reload();
    const partnersRoot = (await ca.inventory.issuers.active("partners", "root"))!;
    const defaultRoot = (await ca.inventory.issuers.active("default", "root"))!;
    expect(partnersRoot.id).not.toBe(defaultRoot.id);
    expect(readFileSync(path.join(ca.dataDir, "root-partners.pem"), "utf8")).toBe(toPem(partnersRoot.certificateDer));
    expect(readFileSync(path.join(ca.dataDir, "chain-partners.pem"), "utf8")).toContain(toPem(partnersRoot.certificateDer));

    const partnerCert = await issue("api.partner.example", "partners", true);
    expect(partnerCert.issuerId).toBe(ca.runtime.keyring.active("partners").record.id);
    const chain = partnerCert.chain.slice(0, -1).join("");
    expect(opensslVerify(partnerCert.pem, toPem(partnersRoot.certificateDer), chain).stdout).toMatch(/: OK/);
    const crossed = opensslVerify(partnerCert.pem, toPem(defaultRoot.certificateDer), chain);
    expect(crossed.status).not.toBe(0);
    const internal = await issue("svc.internal.test");
    expect(opensslVerify(internal.pem, toPem(partnersRoot.certificateDer), internal.chain.slice(0, -1).join("")).status).not.toBe(0);

    // a renewal stays in the hierarchy its certificate came from
    const record = (await ca.inventory.certificates.get(partnerCert.serial))!;
    const renewed = await ca.runtime.authority.renew({ predecessor: record, requester: await successorRequester(ca.inventory, record, "test") });
    expect(renewed.issuerId).toBe(partnerCert.issuerId);
  });

  it("pki issuers rotate --at: staged until its time, then activated by the scheduler; a retired intermediate expires after its last certificate", async () => {
    const previous = ca.runtime.keyring.active("partners").record;
    // a certificate that outlives the switch keeps the previous intermediate in service
    const longLived = await ca.runtime.authority.issue({
      csr: parseCsr(opensslCsr({ subject: "/CN=long.partner.example" }).csrPem),
      profile: "mtls",
      ttlSeconds: 6 * 3600,
      requester: { kind: "operator", actor: "test", hierarchy: "partners" },
    });
    expect(longLived.issuerId).toBe(previous.id);
    const at = new Date(Date.now() + HOUR);
    const rotate = pki(["issuers", "rotate", "--hierarchy", "partners", "--at", at.toISOString()], ca.env);
    expect(rotate.status).toBe(0);
    const stagedId = /staged (\S+)/.exec(rotate.stdout)![1]!;
    expect(rotate.stdout).toContain(`becomes active at ${at.toISOString()}`);
    expect(await ca.inventory.issuers.get(stagedId)).toMatchObject({ status: "staged", activateAt: at });
    await ca.runtime.keyring.reload();
    expect(ca.runtime.keyring.active("partners").record.id).toBe(previous.id);

    const clock = new TravelClock(new Date(Date.now() + 5 * 60_000));
    const scheduler = createScheduler({ runtime: { ...ca.runtime, clock }, log: createLogger("silent") });
    expect((await scheduler.runJob("issuer-lifecycle", { force: true })).counts).toMatchObject({ activated: 0 });
    clock.set(new Date(at.getTime() + 60_000));
    expect((await scheduler.runJob("issuer-lifecycle", { force: true })).counts).toMatchObject({ activated: 1 });
    // the job reloads its own process's keyring: no restart
    expect(ca.runtime.keyring.active("partners").record.id).toBe(stagedId);
    expect((await ca.inventory.issuers.get(previous.id))!.status).toBe("retired");
    expect(ca.runtime.keyring.get(previous.id)).toBeDefined();

    // the retired one keeps serving CRL/OCSP while its certificates live, and expires after the last one
    clock.set(new Date(at.getTime() + 2 * 60_000));
    expect((await scheduler.runJob("issuer-lifecycle", { force: true })).counts).toMatchObject({ expired: 0 });
    clock.set(new Date(longLived.notAfter.getTime() - 60_000));
    expect((await scheduler.runJob("issuer-lifecycle", { force: true })).counts).toMatchObject({ expired: 0 });
    expect((await ca.inventory.issuers.get(previous.id))!.status).toBe("retired");
    clock.set(new Date(longLived.notAfter.getTime() + 1000));
    const end = await scheduler.runJob("issuer-lifecycle", { force: true });
    expect(end.counts!.expired).toBeGreaterThanOrEqual(1);
    expect((await ca.inventory.issuers.get(previous.id))!.status).toBe("expired");
    expect(ca.runtime.keyring.get(previous.id)).toBeUndefined();
    const audit = (await ca.inventory.audit.recent(200)).map((a) => `${a.action}:${a.target}`);
    expect(audit).toContain(`issuer.schedule-activation:${stagedId}`);
    expect(audit).toContain(`issuer.expire:${previous.id}`);
    await scheduler.stop();
  });
});
