// After a rotation the retired intermediate signs nothing new, but revocations of its
// certificates keep appearing on its own CRL and in OCSP, signed by its own keys (the
// step-ca failure mode the domain brief lists).
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrlPublisher } from "@pki/revocation";
import { revokeCertificate, rotateIntermediate } from "@pki/authority";
import { toPem } from "@pki/x509";
import { derToPem, fetchBytes, runAsync, startRevocationCa, type RevocationCa } from "../support/revocation.ts";
import { run } from "../support/tools.ts";

let rca: RevocationCa;
beforeAll(async () => {
  rca = await startRevocationCa({ PKI_CRL_DEBOUNCE_MS: "200" });
  await rca.settle();
});
afterAll(async () => {
  await rca?.stop();
});

describe("a retired intermediate", () => {
  it("keeps its own CRL and OCSP, signed by its own keys, for certificates it issued before the rotation", async () => {
    const oldId = rca.issuerId;
    const oldLeaf = await rca.issue({ commonName: "before-rotation.example" });
    await rca.settle();

    await rotateIntermediate(rca.ca.runtime.config, rca.ca.inventory, rca.ca.runtime.clock, { actor: "test" });
    await rca.ca.runtime.keyring.reload();
    const active = rca.ca.runtime.keyring.active();
    expect(active.record.id).not.toBe(oldId);
    expect(rca.ca.runtime.keyring.get(oldId)!.record.status).toBe("retired");
    const newIntermediate = path.join(rca.dir, "new-intermediate.pem");
    writeFileSync(newIntermediate, toPem(active.chain[0]!));
    const newLeaf = await rca.issue({ commonName: "after-rotation.example" });
    await rca.roles.publisher.tick();
    await rca.roles.ocspSigner.sweep(true);
    await rca.settle();

    await revokeCertificate({ inventory: rca.ca.inventory, events: rca.ca.runtime.events, clock: rca.ca.runtime.clock }, { serial: oldLeaf.serial, reason: "superseded", actor: "test" });
    await rca.settle();

    const oldCrl = await fetchBytes(`${rca.baseUrl}/crl/${oldId}.crl`);
    expect(oldCrl.status).toBe(200);
    const oldCrlPath = path.join(rca.dir, "old.crl.pem");
    writeFileSync(oldCrlPath, derToPem(oldCrl.body, "X509 CRL"));
    const text = run("openssl", ["crl", "-in", oldCrlPath, "-noout", "-text"]).stdout;
    expect(text).toContain(oldLeaf.serial.toUpperCase());
    // Signed by the retired intermediate's key: it verifies under the old certificate only.
    expect(run("openssl", ["crl", "-in", oldCrlPath, "-CAfile", rca.bundlePath, "-noout", "-verify"]).stderr).toMatch(/verify OK/);
    const againstNew = run("openssl", ["crl", "-in", oldCrlPath, "-CAfile", `${newIntermediate}`, "-noout", "-verify"]);
    expect(againstNew.stderr).not.toMatch(/verify OK/);

    const oldOcsp = await runAsync("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-cert", oldLeaf.certPath, "-url", `${rca.baseUrl}/ocsp`, "-CAfile", rca.rootPath, "-no_nonce", "-resp_text"]);
    expect(oldOcsp.stdout + oldOcsp.stderr).toMatch(/Response verify OK/);
    expect(oldOcsp.stdout).toMatch(/: revoked/);
    expect(oldOcsp.stdout).toContain(`OCSP Responder ${oldId}`);

    const newCrl = await fetchBytes(`${rca.baseUrl}/crl/${active.record.id}.crl`);
    expect(newCrl.status).toBe(200);
    const newOcsp = await runAsync("openssl", ["ocsp", "-issuer", newIntermediate, "-cert", newLeaf.certPath, "-url", `${rca.baseUrl}/ocsp`, "-CAfile", rca.rootPath, "-no_nonce", "-resp_text"]);
    expect(newOcsp.stdout + newOcsp.stderr).toMatch(/Response verify OK/);
    expect(newOcsp.stdout).toMatch(/: good/);
    expect(newOcsp.stdout).toContain(`OCSP Responder ${active.record.id}`);

    // Once the last certificate it issued has expired (leaves here live one day; its
    // delegated responder certificate does not count), the retired issuer stops publishing.
    const deps = { inventory: rca.ca.inventory, keyring: rca.ca.runtime.keyring, config: rca.ca.runtime.config };
    const stillIn = (await new CrlPublisher({ ...deps, clock: rca.ca.runtime.clock }).publishingIssuers()).map((i) => i.record.id);
    expect(stillIn).toContain(oldId);
    const twoDaysOn = { now: () => new Date(Date.now() + 2 * 86_400_000) };
    const later = (await new CrlPublisher({ ...deps, clock: twoDaysOn }).publishingIssuers()).map((i) => i.record.id);
    expect(later).not.toContain(oldId);
    expect(later).toContain(active.record.id);
  });
});
