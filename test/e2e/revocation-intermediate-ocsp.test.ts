// An intermediate's AIA names our OCSP URL, so relying parties that check the whole path
// ask it about the intermediate (CertID under the root). The root signs those answers in
// its ceremonies, directly with its own key; `openssl ocsp` judges them.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toPem } from "@pki/x509";
import { runAsync, startRevocationCa, type RevocationCa } from "../support/revocation.ts";
import { pki, run } from "../support/tools.ts";

let rca: RevocationCa;
beforeAll(async () => {
  rca = await startRevocationCa();
});
afterAll(async () => {
  await rca?.stop();
});

async function askAboutIntermediate(intermediatePath: string, extra: string[] = []) {
  const result = await runAsync("openssl", ["ocsp", "-issuer", rca.rootPath, ...extra, "-cert", intermediatePath, "-url", `${rca.baseUrl}/ocsp`, "-CAfile", rca.rootPath, "-resp_text"]);
  return { ...result, all: result.stdout + result.stderr };
}

const rootKeyHash = () => {
  const pubkey = run("openssl", ["x509", "-in", rca.rootPath, "-noout", "-pubkey"]).stdout;
  const der = run("openssl", ["pkey", "-pubin", "-outform", "DER"], { input: pubkey }).stdout;
  expect(der.length).toBeGreaterThan(0);
  // -resp_text prints the responder's key hash; compare with the root's, computed by openssl.
  const text = run("openssl", ["x509", "-in", rca.rootPath, "-noout", "-ocspid"]).stdout;
  return /Public key OCSP hash: ([0-9A-F]{40})/.exec(text)![1]!;
};

describe("OCSP about intermediates", () => {
  it("answers good for the intermediate, signed by the root key itself, valid as long as the root CRL", async () => {
    for (const hash of [[], ["-sha256"]]) {
      const out = await askAboutIntermediate(rca.intermediatePath, hash);
      expect(out.all).toMatch(/Response verify OK/);
      expect(out.stdout).toMatch(new RegExp(`${rca.intermediatePath.replace(/[/.]/g, "\\$&")}: good`));
      expect(out.stdout).toContain(`Responder Id: ${rootKeyHash()}`);
    }
    // The root as the only trusted responder: the signature verifies against its key, no delegation.
    const onlyRoot = await askAboutIntermediate(rca.intermediatePath, ["-VAfile", rca.rootPath]);
    expect(onlyRoot.all).toMatch(/Response verify OK/);
    const nextUpdate = new Date(/Next Update: (.*GMT)/.exec(onlyRoot.stdout)![1]!);
    const rootCrl = (await rca.ca.inventory.crls.state(rca.rootId))!.full!;
    expect(nextUpdate.getTime()).toBe(rootCrl.nextUpdate.getTime());
  });

  it("answers revoked once `pki issuers revoke` ran, and good for the replacement", async () => {
    const revoked = pki(["issuers", "revoke", rca.issuerId, "--reason", "keyCompromise"], rca.ca.env);
    expect(revoked.status, revoked.stderr).toBe(0);
    // The CLI is another process: this responder learns of it on its next poll (the
    // second call: the first may join a poll that began before the CLI wrote).
    await rca.ocsp.responder.poll();
    await rca.ocsp.responder.poll();
    const out = await askAboutIntermediate(rca.intermediatePath);
    expect(out.all).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/: revoked/);
    expect(out.stdout).toMatch(/Reason: keyCompromise/);

    const replacement = (await rca.ca.inventory.issuers.list()).find((i) => i.role === "intermediate" && i.status === "active")!;
    expect(replacement.id).not.toBe(rca.issuerId);
    const replacementPath = path.join(rca.dir, "replacement.pem");
    writeFileSync(replacementPath, toPem(replacement.certificateDer));
    const fresh = await askAboutIntermediate(replacementPath);
    expect(fresh.all).toMatch(/Response verify OK/);
    expect(fresh.stdout).toMatch(/: good/);
  });

  it("refuses what only a live signature could answer about an intermediate: several in one request", async () => {
    const out = await runAsync("openssl", ["ocsp", "-issuer", rca.rootPath, "-cert", rca.intermediatePath, "-cert", rca.intermediatePath, "-url", `${rca.baseUrl}/ocsp`, "-no_nonce"]);
    expect(out.stdout + out.stderr).toMatch(/Responder Error: unauthorized \(6\)/);
  });
});
