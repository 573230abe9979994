// CRLs end to end: a real SoftHSM token signs them, PostgreSQL holds them, real HTTP
// serves them, and OpenSSL and GnuTLS judge them.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrlPublisher } from "@pki/revocation";
import { revokeCertificate } from "@pki/authority";
import { Inventory } from "@pki/db";
import { derToPem, fetchBytes, startRevocationCa, type RevocationCa } from "../support/revocation.ts";
import { pki, run } from "../support/tools.ts";

let rca: RevocationCa;
beforeAll(async () => {
  // Debounce of one second and no maximum wait that a test could reach: a burst is one publication.
  rca = await startRevocationCa({ PKI_CRL_DEBOUNCE_MS: "1000", PKI_CRL_MAX_WAIT_MS: "600000" });
  await rca.settle();
});
afterAll(async () => {
  await rca?.stop();
});

const revoke = (serial: string, reason?: string) => revokeCertificate({ inventory: rca.ca.inventory, events: rca.ca.runtime.events, clock: rca.ca.runtime.clock }, { serial, reason, actor: "test" });

async function fetchCrl(file: string): Promise<{ der: Buffer; pemPath: string; text: string; headers: Headers }> {
  const response = await fetchBytes(`${rca.baseUrl}/crl/${file}`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("application/pkix-crl");
  const pemPath = path.join(rca.dir, `${file}.pem`);
  writeFileSync(pemPath, derToPem(response.body, "X509 CRL"));
  const text = run("openssl", ["crl", "-in", pemPath, "-noout", "-text"]).stdout;
  return { der: response.body, pemPath, text, headers: response.headers };
}

const crlNumber = (text: string) => BigInt(/CRL Number: *\n\s*(\d+)/.exec(text)![1]!);

describe("full CRL", () => {
  it("is a v2 CRL with number, AKI, IDP and Freshest CRL that openssl verifies with the issuer key", async () => {
    const crl = await fetchCrl(`${rca.issuerId}.crl`);
    expect(crl.text).toMatch(/Version 2/);
    expect(crl.text).toMatch(/X509v3 Authority Key Identifier/);
    expect(crl.text).toMatch(/X509v3 Issuing Distribution Point: critical/);
    expect(crl.text).toMatch(/Only User Certificates/);
    expect(crl.text).toContain(`URI:${rca.baseUrl}/crl/${rca.issuerId}-delta.crl`);
    const verified = run("openssl", ["crl", "-in", crl.pemPath, "-CAfile", rca.bundlePath, "-noout", "-verify"]);
    expect(verified.stderr).toMatch(/verify OK/);
    // And the signature does not verify under the root: it is the intermediate's key that signed.
    const wrong = run("openssl", ["crl", "-in", crl.pemPath, "-CAfile", rca.rootPath, "-noout", "-verify"]);
    expect(wrong.stderr).not.toMatch(/verify OK/);
  });

  it("is accepted by GnuTLS certtool, which checks its signature against the intermediate", async () => {
    const crl = await fetchCrl(`${rca.issuerId}.crl`);
    const info = run("certtool", ["--crl-info", "--infile", crl.pemPath]);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/Version: 2/);
    expect(info.stdout).toMatch(/CRL Number \(not critical\)/);
    const verify = run("certtool", ["--verify-crl", "--load-ca-certificate", rca.intermediatePath, "--infile", crl.pemPath]);
    expect(verify.stdout + verify.stderr).toMatch(/Verified/);
    expect(verify.status).toBe(0);
  });

  it("carries RFC 5019-style caching headers consistent with thisUpdate and nextUpdate, and answers 304 to its ETag", async () => {
    const crl = await fetchCrl(`${rca.issuerId}.crl`);
    const lastUpdate = new Date(/Last Update: (.*GMT)/.exec(crl.text)![1]!);
    const nextUpdate = new Date(/Next Update: (.*GMT)/.exec(crl.text)![1]!);
    expect(new Date(crl.headers.get("last-modified")!).getTime()).toBe(lastUpdate.getTime());
    expect(new Date(crl.headers.get("expires")!).getTime()).toBe(nextUpdate.getTime());
    const maxAge = Number(/max-age=(\d+)/.exec(crl.headers.get("cache-control")!)![1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(Date.now() + maxAge * 1000).toBeLessThanOrEqual(nextUpdate.getTime() + 1000);
    const again = await fetchBytes(`${rca.baseUrl}/crl/${rca.issuerId}.crl`, { headers: { "if-none-match": crl.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect((await fetchBytes(`${rca.baseUrl}/crl/no-such-issuer.crl`)).status).toBe(404);
  });
});

describe("revocation on the CRLs", () => {
  it("lists a revoked certificate with date and reason, in the delta at once and the full CRL after the debounce; openssl verify -crl_check refuses it", async () => {
    const good = await rca.issue();
    const bad = await rca.issue();
    const before = crlNumber((await fetchCrl(`${rca.issuerId}.crl`)).text);
    const revocation = await revoke(bad.serial, "keyCompromise");
    await rca.settle();

    const delta = await fetchCrl(`${rca.issuerId}-delta.crl`);
    expect(delta.text).toMatch(/X509v3 Delta CRL Indicator: critical/);
    expect(delta.text).toContain(`Serial Number: ${bad.serial.toUpperCase()}`);
    expect(run("openssl", ["crl", "-in", delta.pemPath, "-CAfile", rca.bundlePath, "-noout", "-verify"]).stderr).toMatch(/verify OK/);

    const full = await fetchCrl(`${rca.issuerId}.crl`);
    expect(crlNumber(full.text)).toBeGreaterThan(before);
    expect(full.text).toContain(`Serial Number: ${bad.serial.toUpperCase()}`);
    expect(full.text).not.toContain(`Serial Number: ${good.serial.toUpperCase()}`);
    expect(full.text).toMatch(/CRL Reason Code: *\n\s*Key Compromise/);
    const listed = new Date(/Revocation Date: (.*GMT)/.exec(full.text.slice(full.text.indexOf(bad.serial.toUpperCase())))![1]!);
    expect(listed.getTime()).toBe(revocation.revokedAt.getTime());

    const refused = run("openssl", ["verify", "-crl_check", "-CAfile", rca.bundlePath, "-CRLfile", full.pemPath, bad.certPath]);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
    const accepted = run("openssl", ["verify", "-crl_check", "-CAfile", rca.bundlePath, "-CRLfile", full.pemPath, good.certPath]);
    expect(accepted.stdout).toMatch(/: OK/);
    // The delta's base is a full CRL that relying parties have; openssl uses both together.
    const withDelta = run("openssl", ["verify", "-crl_check", "-use_deltas", "-CAfile", rca.bundlePath, "-CRLfile", full.pemPath, "-CRLfile", delta.pemPath, bad.certPath]);
    expect(withDelta.stdout + withDelta.stderr).toMatch(/certificate revoked/);
  });

  it("turns a burst of 1,000 revocations into a handful of CRLs that list all of them", async () => {
    const leaves = [];
    for (let i = 0; i < 1000; i++) leaves.push(await rca.issue());
    await rca.settle();
    const publishedBefore = rca.roles.publisher.published.length;
    const numberBefore = (await rca.ca.inventory.crls.state(rca.issuerId))!.lastNumber;
    for (const leaf of leaves) await revoke(leaf.serial, "superseded");
    await rca.settle();
    const publications = rca.roles.publisher.published.slice(publishedBefore);
    const numberAfter = (await rca.ca.inventory.crls.state(rca.issuerId))!.lastNumber;
    expect(publications.length).toBeGreaterThan(0);
    expect(publications.length).toBeLessThanOrEqual(6);
    expect(numberAfter - numberBefore).toBe(BigInt(publications.length));
    const full = await fetchCrl(`${rca.issuerId}.crl`);
    for (const leaf of [leaves[0]!, leaves[499]!, leaves[999]!]) expect(full.text).toContain(`Serial Number: ${leaf.serial.toUpperCase()}`);
    expect(full.text.match(/Serial Number:/g)!.length).toBeGreaterThanOrEqual(1000);
    expect(run("openssl", ["crl", "-in", full.pemPath, "-CAfile", rca.bundlePath, "-noout", "-verify"]).stderr).toMatch(/verify OK/);
    // Entries cost what the issue's reference says (35-50 bytes each with a reason code).
    const perEntry = full.der.length / full.text.match(/Serial Number:/g)!.length;
    expect(perEntry).toBeLessThan(55);
  });

  it("keeps CRL numbers unique and never backwards with two publishers racing (separate database connections)", async () => {
    const other = await Inventory.open({ url: rca.ca.runtime.config.databaseUrl, embeddedDir: "" });
    try {
      const second = new CrlPublisher({ inventory: other, keyring: rca.ca.runtime.keyring, config: rca.ca.runtime.config, clock: rca.ca.runtime.clock });
      const observed: bigint[] = [];
      let racing = true;
      const watcher = (async () => {
        while (racing) {
          const state = await rca.ca.inventory.crls.state(rca.issuerId);
          if (state?.full) observed.push(state.full.number);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const results = await Promise.all([
        ...Array.from({ length: 6 }, () => rca.roles.publisher.publishFull(rca.issuerId)),
        ...Array.from({ length: 6 }, () => second.publishFull(rca.issuerId)),
        ...Array.from({ length: 3 }, () => second.publishDelta(rca.issuerId)),
      ]);
      // And a third publisher in another process, the operator's CLI.
      const cli = pki(["crl", "publish", "--issuer", rca.issuerId], rca.ca.env);
      expect(cli.stderr).toBe("");
      racing = false;
      await watcher;
      const numbers = results.map((r) => r.number);
      expect(new Set(numbers).size).toBe(numbers.length);
      for (let i = 1; i < observed.length; i++) expect(observed[i]!).toBeGreaterThanOrEqual(observed[i - 1]!);
      const cliNumbers = [...cli.stdout.matchAll(/#(\d+)/g)].map((m) => BigInt(m[1]!));
      expect(cliNumbers[0]!).toBeGreaterThan(numbers.reduce((a, b) => (a > b ? a : b)));
      const state = await rca.ca.inventory.crls.state(rca.issuerId);
      expect(state!.full!.number).toBe(cliNumbers[0]);
    } finally {
      await other.close();
    }
  });

  it("drops an entry once its certificate expired before the previous scheduled CRL", async () => {
    const shortLived = await rca.issue({ ttlSeconds: 3600 });
    await revoke(shortLived.serial);
    await rca.settle();
    expect((await fetchCrl(`${rca.issuerId}.crl`)).text).toContain(shortLived.serial.toUpperCase());
    // A publisher whose clock is two days on (validity is one day): the certificate expired
    // more than one CRL period ago, so it is gone; a still-valid revoked certificate stays.
    const later = { now: () => new Date(Date.now() + 2 * 86_400_000) };
    const travelling = new CrlPublisher({ inventory: rca.ca.inventory, keyring: rca.ca.runtime.keyring, config: rca.ca.runtime.config, clock: later });
    const longLived = await rca.issue({ ttlSeconds: 10 * 86400 });
    await revoke(longLived.serial);
    await travelling.publishFull(rca.issuerId);
    await rca.roles.cache.refresh();
    const text = (await fetchCrl(`${rca.issuerId}.crl`)).text;
    expect(text).not.toContain(shortLived.serial.toUpperCase());
    expect(text).toContain(longLived.serial.toUpperCase());
    await rca.roles.publisher.publishFull(rca.issuerId);
    await rca.settle();
  });

  it("builds again when a revocation lands between counting the entries and streaming them, signing only the CRL that lists it", async () => {
    const early = await rca.issue();
    const late = await rca.issue();
    await revoke(early.serial);
    const crls = rca.ca.inventory.crls;
    let counts = 0;
    let signatures = 0;
    // The publisher's view of the inventory: right after the first count of the entries,
    // another connection revokes one more certificate, so the stream that follows has one
    // entry more than was counted.
    const racyCrls = new Proxy(crls, {
      get: (target, prop) => {
        if (prop !== "publish") return Reflect.get(target, prop, target);
        const publish: typeof crls.publish = (issuerId, kind, build) =>
          target.publish(issuerId, kind, (context) =>
            build({
              ...context,
              revoked: (filter) => {
                const source = context.revoked(filter);
                return {
                  shape: async (asOf) => {
                    const shape = await source.shape(asOf);
                    if (counts++ === 0) await revoke(late.serial);
                    return shape;
                  },
                  [Symbol.asyncIterator]: () => source[Symbol.asyncIterator](),
                };
              },
            }),
          );
        return publish;
      },
    });
    const inventory = new Proxy(rca.ca.inventory, { get: (target, prop) => (prop === "crls" ? racyCrls : Reflect.get(target, prop, target)) });
    const keyring = rca.ca.runtime.keyring;
    const countingKeyring = new Proxy(keyring, {
      get: (target, prop) => {
        if (prop !== "get") return Reflect.get(target, prop, target);
        return (id: string) => {
          const issuer = target.get(id);
          return issuer && { ...issuer, signer: { ...issuer.signer, signDigest: (digest: Buffer) => (signatures++, issuer.signer.signDigest(digest)) } };
        };
      },
    });
    const before = (await crls.state(rca.issuerId))!.lastNumber;
    const publisher = new CrlPublisher({ inventory, keyring: countingKeyring, config: rca.ca.runtime.config, clock: rca.ca.runtime.clock });
    const meta = await publisher.publishFull(rca.issuerId);
    expect(counts).toBe(2);
    expect(signatures).toBe(1); // the first build failed before the token signed anything
    expect(meta.number).toBeGreaterThan(before);
    const published = (await crls.read(rca.issuerId, "full"))!;
    const pemPath = path.join(rca.dir, "racy.crl.pem");
    writeFileSync(pemPath, derToPem(published.der, "X509 CRL"));
    const text = run("openssl", ["crl", "-in", pemPath, "-CAfile", rca.bundlePath, "-noout", "-text", "-verify"]);
    expect(text.stderr).toMatch(/verify OK/);
    expect(text.stdout).toContain(early.serial.toUpperCase());
    expect(text.stdout).toContain(late.serial.toUpperCase());
    await rca.settle();
  });
});

describe("root CRL", () => {
  it("is signed by the root key in the init ceremony and re-signed by `pki crl sign-root`, with a growing number", async () => {
    const first = await fetchCrl(`${rca.rootId}.crl`);
    expect(first.text).toMatch(/Only CA Certificates/);
    expect(run("openssl", ["crl", "-in", first.pemPath, "-CAfile", rca.rootPath, "-noout", "-verify"]).stderr).toMatch(/verify OK/);
    const signed = pki(["crl", "sign-root"], rca.ca.env);
    expect(signed.stderr).toBe("");
    expect(signed.stdout).toMatch(new RegExp(`${rca.rootId}\\s+root CRL #\\d+`));
    await rca.roles.cache.refresh();
    const second = await fetchCrl(`${rca.rootId}.crl`);
    expect(crlNumber(second.text)).toBeGreaterThan(crlNumber(first.text));
    // The intermediate checks out against the root's CRL (openssl -crl_check_all walks the chain).
    const intermediateCrl = await fetchCrl(`${rca.issuerId}.crl`);
    const leaf = await rca.issue();
    await rca.settle();
    const freshIntermediateCrl = await fetchCrl(`${rca.issuerId}.crl`);
    const all = run("openssl", ["verify", "-crl_check_all", "-CAfile", rca.bundlePath, "-CRLfile", second.pemPath, "-CRLfile", freshIntermediateCrl.pemPath, leaf.certPath]);
    expect(all.stdout + all.stderr).toMatch(/: OK/);
    expect(intermediateCrl.text).toMatch(/Only User Certificates/);
  });
});
