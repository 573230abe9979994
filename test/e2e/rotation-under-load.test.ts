// An operator rotates the intermediate with one command (`pki issuers rotate`, a separate
// process) while issuance runs the whole time through the Authority of two serving
// runtimes: one reloads when told, the other follows by its own periodic keyring reload.
// No request may fail; afterwards certificates of both intermediates verify with openssl,
// and revocations of each show on the right CRL and in the right OCSP answer.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrlPublisher, OcspSigner } from "@pki/revocation";
import { certIdFor, parseCsr, toPem } from "@pki/x509";
import { openCa, openInventory, revokeCertificate, type CaRuntime, type IssuedCertificate } from "@pki/authority";
import type { Inventory } from "@pki/db";
import { REPO_ROOT, startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr, opensslVerify, run, scratchDir, writeTemp } from "../support/tools.ts";

/** The CLI as a child process that does not block this process's event loop (the load keeps running). */
function pkiAsync(args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/cli/src/main.ts"), ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

describe("rotation under load", () => {
  let ca: TestCa;
  let follower: CaRuntime;
  let followerInventory: Inventory;

  beforeAll(async () => {
    ca = await startTestCa({ env: { PKI_KEYRING_RELOAD_SECONDS: "1" } });
    followerInventory = await openInventory(ca.config(), "server");
    follower = await openCa(ca.config(), undefined, followerInventory);
  });
  afterAll(async () => {
    await follower?.close();
    await followerInventory?.close();
    await ca?.cleanup();
  });

  it("switches every runtime to the new intermediate with zero failed issuances, and both generations stay verifiable and revocable", async () => {
    const oldIssuer = ca.runtime.keyring.active().record;
    const csrs = Array.from({ length: 8 }, (_, i) => parseCsr(opensslCsr({ subject: `/CN=load${i}.rotation.test`, sans: [`DNS:load${i}.rotation.test`] }).csrPem));
    const issued: IssuedCertificate[] = [];
    const failures: string[] = [];
    let rotated: string | undefined;
    const newIssuerCount = (runtimeIssued: IssuedCertificate[]) => runtimeIssued.filter((c) => c.issuerId === rotated).length;
    const byRuntime = new Map<CaRuntime, IssuedCertificate[]>([
      [ca.runtime, []],
      [follower, []],
    ]);
    let stop = false;
    const worker = async (runtime: CaRuntime, n: number) => {
      for (let i = 0; !stop; i++) {
        try {
          const cert = await runtime.authority.issue({ csr: csrs[(n + i) % csrs.length]!, profile: "mtls", ttlSeconds: 3600, requester: { kind: "operator", actor: `load-${n}` } });
          issued.push(cert);
          byRuntime.get(runtime)!.push(cert);
        } catch (error) {
          failures.push((error as Error).message);
        }
        // keep going until both runtimes have issued plenty under the new intermediate
        if (rotated && newIssuerCount(byRuntime.get(ca.runtime)!) >= 40 && newIssuerCount(byRuntime.get(follower)!) >= 40) stop = true;
      }
    };
    const workers = [0, 1, 2].map((n) => worker(ca.runtime, n)).concat([3, 4].map((n) => worker(follower, n)));

    // let the load run under the old intermediate first
    while (issued.length < 60 && failures.length === 0) await new Promise((r) => setImmediate(r));
    const rotation = await pkiAsync(["issuers", "rotate"], ca.env);
    expect(rotation.stderr).toBe("");
    expect(rotation.status).toBe(0);
    const newId = /activated (\S+)/.exec(rotation.stdout)?.[1];
    expect(newId).toBeDefined();
    expect(rotation.stdout).toContain(`retired ${oldIssuer.id}`);
    // the leader is told (as the scheduler's lifecycle job does); the follower finds out on its own
    await ca.runtime.keyring.reload();
    rotated = newId;
    await Promise.all(workers);

    expect(failures).toEqual([]);
    const before = issued.filter((c) => c.issuerId === oldIssuer.id);
    const after = issued.filter((c) => c.issuerId === newId);
    expect(before.length).toBeGreaterThanOrEqual(60);
    expect(after.length).toBeGreaterThanOrEqual(80);
    expect(issued.length).toBe(before.length + after.length);
    expect(follower.keyring.active().record.id).toBe(newId);
    console.log(`rotation under load: ${issued.length} certificates, ${before.length} before / ${after.length} after the switch, 0 failures`);

    const issuers = await ca.inventory.issuers.list();
    expect(issuers.find((i) => i.id === oldIssuer.id)).toMatchObject({ status: "retired" });
    expect(issuers.find((i) => i.id === newId)).toMatchObject({ status: "active", role: "intermediate", parentId: oldIssuer.parentId });
    // per target: the issuances under load wrote many more audit rows than these steps
    const auditOf = async (target: string) => (await ca.inventory.audit.recent(50, target)).map((a) => `${a.action}:${a.target}`);
    const audit = [...(await auditOf(newId!)), ...(await auditOf(oldIssuer.id)), ...(await auditOf(oldIssuer.parentId!))];
    for (const step of [
      `issuer.plan:${newId}`,
      `issuer.create:${newId}`,
      `issuer.stage:${newId}`,
      `issuer.activate:${newId}`,
      `issuer.retire:${oldIssuer.id}`,
      `issuer.rotate.begin:${oldIssuer.parentId}`,
    ])
      expect(audit).toContain(step);

    // both generations verify with openssl against the one root
    const root = issuers.find((i) => i.id === oldIssuer.parentId)!;
    const rootPem = toPem(root.certificateDer);
    const bothIntermediates = toPem(issuers.find((i) => i.id === oldIssuer.id)!.certificateDer) + toPem(issuers.find((i) => i.id === newId)!.certificateDer);
    for (const cert of [before[0]!, before.at(-1)!, after[0]!, after.at(-1)!]) {
      const verified = opensslVerify(cert.pem, rootPem, bothIntermediates);
      expect(verified.stdout + verified.stderr).toMatch(/: OK/);
      expect(opensslVerify(cert.pem, rootPem, cert.chain.slice(0, -1).join("")).stdout).toMatch(/: OK/);
    }

    // revoke one certificate of each generation: each shows on its own issuer's CRL only
    const revokedOld = before[1]!;
    const revokedNew = after[1]!;
    for (const cert of [revokedOld, revokedNew]) await revokeCertificate(ca.runtime, { serial: cert.serial, reason: "keyCompromise", actor: "test" });
    const publisher = new CrlPublisher({ inventory: ca.inventory, keyring: ca.runtime.keyring, config: ca.runtime.config, clock: ca.runtime.clock });
    const publishing = (await publisher.publishingIssuers()).map((i) => i.record.id).sort();
    expect(publishing).toEqual([oldIssuer.id, newId!].sort());
    const dir = scratchDir();
    const crlFile = async (issuerId: string) => {
      await publisher.publishFull(issuerId);
      const crl = await ca.inventory.crls.read(issuerId, "full");
      return writeTemp(`${issuerId}.crl.der`, crl!.der, dir);
    };
    const oldCrl = await crlFile(oldIssuer.id);
    const newCrl = await crlFile(newId!);
    const crlText = (file: string) => run("openssl", ["crl", "-inform", "DER", "-in", file, "-noout", "-text"]).stdout.toLowerCase();
    const serialOf = (hex: string) => hex.replace(/^0+/, "");
    expect(crlText(oldCrl)).toContain(serialOf(revokedOld.serial));
    expect(crlText(oldCrl)).not.toContain(serialOf(revokedNew.serial));
    expect(crlText(newCrl)).toContain(serialOf(revokedNew.serial));
    expect(crlText(newCrl)).not.toContain(serialOf(revokedOld.serial));
    // openssl path validation with the CRLs: revoked ones fail as revoked, others pass
    const pemCrl = (file: string) => run("openssl", ["crl", "-inform", "DER", "-in", file]).stdout;
    const crls = writeTemp("crls.pem", pemCrl(oldCrl) + pemCrl(newCrl), dir);
    for (const [cert, expected] of [
      [revokedOld, /certificate revoked/],
      [revokedNew, /certificate revoked/],
      [before[2]!, /: OK/],
      [after[2]!, /: OK/],
    ] as const) {
      const result = opensslVerify(cert.pem, rootPem, bothIntermediates, ["-crl_check", "-CRLfile", crls]);
      expect(result.stdout + result.stderr).toMatch(expected);
    }

    // OCSP: the retired intermediate still answers for its certificates
    const ocsp = new OcspSigner({ inventory: ca.inventory, keyring: ca.runtime.keyring, authority: ca.runtime.authority, config: ca.runtime.config, clock: ca.runtime.clock });
    for (const [cert, status] of [
      [revokedOld, "revoked"],
      [before[2]!, "good"],
      [revokedNew, "revoked"],
    ] as const) {
      const issuer = ca.runtime.keyring.get(cert.issuerId)!;
      const response = await ocsp.signLive(cert.issuerId, [{ certIdDer: certIdFor("sha1", issuer.facts, cert.serial), serialHex: cert.serial, issuerId: cert.issuerId }], undefined);
      const text = run("openssl", [
        "ocsp",
        "-respin",
        writeTemp(`ocsp-${cert.serial}.der`, response, dir),
        "-issuer",
        writeTemp(`issuer-${cert.serial}.pem`, toPem(issuer.record.certificateDer), dir),
        "-cert",
        writeTemp(`leaf-${cert.serial}.pem`, cert.pem, dir),
        "-CAfile",
        writeTemp("root.pem", rootPem, dir),
        "-no_nonce",
      ]);
      expect(text.stdout + text.stderr).toMatch(new RegExp(`: ${status}`));
      expect(text.stdout + text.stderr).toMatch(/Response verify OK/);
    }
    await ocsp.stop();
    await publisher.stop();
  });
});
