// The streaming CRL builder against an independent parser (@peculiar/asn1-x509) and an
// independent verifier (OpenSSL). The signer is a real ECDSA key in Node's crypto: the
// token's part is covered end to end in test/e2e/revocation-crl.test.ts.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList, CRLReason, id_ce_cRLReasons } from "@peculiar/asn1-x509";
import { beforeAll, describe, expect, it } from "vitest";
import type { Signer } from "@pki/hsm";
import { LintError } from "@pki/lint";
import type { RevokedEntry } from "@pki/db";
import { caCertificateFacts, type CaCertificateFacts } from "../certificate-facts.ts";
import { toPem } from "../der.ts";
import { buildAndSignCrl, derTime, encodeEntries } from "./builder.ts";

let dir: string;
let facts: CaCertificateFacts;
let signer: Signer;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "crl-unit-"));
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keyPath = path.join(dir, "ca.key");
  writeFileSync(keyPath, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
  const certPath = path.join(dir, "ca.pem");
  execFileSync("openssl", ["req", "-x509", "-key", keyPath, "-subj", "/CN=Unit CRL CA", "-days", "2", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", certPath]);
  const der = Buffer.from(readFileSync(certPath, "utf8").replace(/-----[^-]+-----|\s/g, ""), "base64");
  facts = caCertificateFacts(der);
  signer = {
    keyUri: "pkcs11:token=unit;object=none",
    algorithm: "ECDSA-P256",
    publicKeySpki: facts.spki,
    sign: async (data: Buffer) => sign("sha256", data, { key: keys.privateKey, dsaEncoding: "der" }),
  };
});

async function* batches(...lists: RevokedEntry[][]): AsyncIterable<RevokedEntry[]> {
  for (const list of lists) yield list;
}

const now = new Date("2026-11-23T12:00:00Z");
const params = (number: bigint, extra: Record<string, unknown> = {}) => ({
  issuer: facts,
  number,
  thisUpdate: now,
  nextUpdate: new Date(now.getTime() + 86_400_000),
  scope: { url: "http://ca.example/crl/int.crl", deltaUrl: "http://ca.example/crl/int-delta.crl", covers: "user" as const },
  ...extra,
});

describe("buildAndSignCrl", () => {
  it("streams batches into one CRL that asn1-x509 parses entry for entry and OpenSSL verifies", async () => {
    const a = { serialHex: "01" + "aa".repeat(16), revokedAt: now.getTime() / 1000 - 60, reason: 1 };
    const b = { serialHex: "7f", revokedAt: now.getTime() / 1000 - 30, reason: 0 };
    const c = { serialHex: "80ff", revokedAt: now.getTime() / 1000 - 10, reason: 4 }; // high bit: needs a 0x00 pad
    const crl = await buildAndSignCrl(params(42n), batches([a, b], [c]), signer, "full");
    expect(crl.entries).toBe(3);
    const parsed = AsnConvert.parse(crl.der, CertificateList);
    const entries = parsed.tbsCertList.revokedCertificates!;
    expect(entries.map((e) => Buffer.from(e.userCertificate).toString("hex"))).toEqual([a.serialHex, "7f", "0080ff"]);
    expect(entries[0]!.revocationDate.getTime().getTime()).toBe(a.revokedAt * 1000);
    const reason = entries[0]!.crlEntryExtensions!.find((e) => e.extnID === id_ce_cRLReasons)!;
    expect(AsnConvert.parse(reason.extnValue, CRLReason).reason).toBe(1);
    expect(entries[1]!.crlEntryExtensions).toBeUndefined(); // unspecified is left out
    const crlPath = path.join(dir, "unit.crl.pem");
    writeFileSync(crlPath, toPem(crl.der, "X509 CRL"));
    const out = execFileSync("openssl", ["crl", "-in", crlPath, "-CAfile", path.join(dir, "ca.pem"), "-noout", "-text", "-verify"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toMatch(/CRL Number: *\n\s*42/);
    expect(out).toMatch(/Freshest CRL/);
  });

  it("leaves out an empty revoked list, and marks a delta with its critical base number", async () => {
    const crl = await buildAndSignCrl(params(7n, { baseNumber: 5n }), batches(), signer, "delta");
    const parsed = AsnConvert.parse(crl.der, CertificateList);
    expect(parsed.tbsCertList.revokedCertificates).toBeUndefined();
    const indicator = parsed.tbsCertList.crlExtensions!.find((e) => e.extnID === "2.5.29.27")!;
    expect(indicator.critical).toBe(true);
    expect(Buffer.from(indicator.extnValue.buffer).toString("hex")).toBe("020105");
    expect(parsed.tbsCertList.crlExtensions!.some((e) => e.extnID === "2.5.29.46")).toBe(false);
  });

  it("refuses entries RFC 5280 does not allow, before anything is signed", async () => {
    let signed = 0;
    const counting: Signer = { ...signer, sign: async (d) => (signed++, signer.sign(d)) };
    await expect(buildAndSignCrl(params(1n), batches([{ serialHex: "01" + "00".repeat(20), revokedAt: 0, reason: 0 }]), counting, "full")).rejects.toThrow(LintError);
    await expect(buildAndSignCrl(params(1n), batches([{ serialHex: "01", revokedAt: 0, reason: 7 }]), counting, "full")).rejects.toThrow(/reason code 7/);
    await expect(buildAndSignCrl(params(1n, { nextUpdate: new Date(now.getTime() - 1000) }), batches(), counting, "full")).rejects.toThrow(/nextUpdate/);
    expect(signed).toBe(0);
  });
});

describe("entry encoding", () => {
  it("costs 36 bytes for a 17-octet serial without reason and 50 with one", () => {
    const at = now.getTime() / 1000;
    expect(encodeEntries([{ serialHex: "01" + "ab".repeat(16), revokedAt: at, reason: 0 }], now).length).toBe(36);
    expect(encodeEntries([{ serialHex: "01" + "ab".repeat(16), revokedAt: at, reason: 1 }], now).length).toBe(50);
  });

  it("writes UTCTime before 2050 and GeneralizedTime from 2050", () => {
    expect(derTime(new Date("2049-12-31T23:59:59Z")).toString("latin1").slice(2)).toBe("491231235959Z");
    expect(derTime(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
    const at2050 = Date.parse("2050-03-04T05:06:07Z") / 1000;
    const entry = encodeEntries([{ serialHex: "0102", revokedAt: at2050, reason: 0 }], new Date("2051-01-01T00:00:00Z"));
    expect(entry.subarray(6).toString("latin1")).toBe("\x18\x0f20500304050607Z");
    const before = encodeEntries([{ serialHex: "0102", revokedAt: at2050 - 86400 * 365 * 30, reason: 0 }], new Date("2051-01-01T00:00:00Z"));
    expect(before[6]).toBe(0x17);
  });

  it("refuses serials that are empty, odd, not hex or longer than 20 octets, and undefined reasons", () => {
    for (const serialHex of ["", "abc", "zz", "01" + "00".repeat(20), "80" + "00".repeat(19)]) {
      expect(() => encodeEntries([{ serialHex, revokedAt: 0, reason: 0 }], now)).toThrow(LintError);
    }
    expect(() => encodeEntries([{ serialHex: "01", revokedAt: 0, reason: 11 }], now)).toThrow(LintError);
  });
});
