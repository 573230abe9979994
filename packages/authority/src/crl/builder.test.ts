// The streaming CRL builder against an independent parser (@peculiar/asn1-x509) and an
// independent verifier (OpenSSL). The signer is a real ECDSA key that `openssl pkeyutl`
// signs digests with: the token's part is covered end to end in test/e2e/revocation-crl.test.ts.
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList, CRLReason, id_ce_cRLReasons } from "@peculiar/asn1-x509";
import { beforeAll, describe, expect, it } from "vitest";
import type { Signer } from "@pki/hsm";
import { LintError } from "@pki/lint";
import { CrlSourceChangedError, type RevokedEntry, type RevokedSource } from "@pki/db";
import { caCertificateFacts, type CaCertificateFacts } from "@pki/x509";
import { toPem } from "@pki/x509";
import { buildAndSignCrl, derTime, encodeEntries, shapeOf } from "./builder.ts";

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
  const signDigest = async (digest: Buffer) => execFileSync("openssl", ["pkeyutl", "-sign", "-inkey", keyPath], { input: digest });
  signer = {
    keyUri: "pkcs11:token=unit;object=none",
    algorithm: "ECDSA-P256",
    publicKeySpki: facts.spki,
    hash: "sha256",
    sign: (data: Buffer) => signDigest(createHash("sha256").update(data).digest()),
    signDigest,
  };
});

/** Batches as a cursor would stream them, with the shape counts the database would give. */
function batches(...lists: RevokedEntry[][]): RevokedSource {
  return {
    shape: async (asOf) => shapeOf(lists.flat(), asOf),
    [Symbol.asyncIterator]: async function* () {
      for (const list of lists) yield list;
    },
  };
}

/** Builds into memory: the parts joined in seq order, as the database joins them. */
async function build(...args: Parameters<typeof buildAndSignCrl> extends [...infer Head, unknown] ? Head : never) {
  const parts = new Map<number, Buffer>();
  const built = await buildAndSignCrl(...args, async (seq, bytes) => void parts.set(seq, Buffer.from(bytes)));
  const der = Buffer.concat([...parts.entries()].sort((x, y) => x[0] - y[0]).map(([, bytes]) => bytes));
  return { ...built, der, parts: parts.size };
}

function verifyWithOpenssl(der: Buffer): string {
  const crlPath = path.join(dir, "unit.crl.pem");
  writeFileSync(crlPath, toPem(der, "X509 CRL"));
  return execFileSync("openssl", ["crl", "-in", crlPath, "-CAfile", path.join(dir, "ca.pem"), "-noout", "-text", "-verify"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
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
    const a = { serialHex: `01${"aa".repeat(16)}`, revokedAt: now.getTime() / 1000 - 60, reason: 1 };
    const b = { serialHex: "7f", revokedAt: now.getTime() / 1000 - 30, reason: 0 };
    const c = { serialHex: "80ff", revokedAt: now.getTime() / 1000 - 10, reason: 4 }; // high bit: needs a 0x00 pad
    const crl = await build(params(42n), batches([a, b], [c]), signer, "full");
    expect(crl.entries).toBe(3);
    const parsed = AsnConvert.parse(crl.der, CertificateList);
    const entries = parsed.tbsCertList.revokedCertificates!;
    expect(entries.map((e) => Buffer.from(e.userCertificate).toString("hex"))).toEqual([a.serialHex, "7f", "0080ff"]);
    expect(entries[0]!.revocationDate.getTime().getTime()).toBe(a.revokedAt * 1000);
    const reason = entries[0]!.crlEntryExtensions!.find((e) => e.extnID === id_ce_cRLReasons)!;
    expect(AsnConvert.parse(reason.extnValue, CRLReason).reason).toBe(1);
    expect(entries[1]!.crlEntryExtensions).toBeUndefined(); // unspecified is left out
    const out = verifyWithOpenssl(crl.der);
    expect(out).toMatch(/CRL Number: *\n\s*42/);
    expect(out).toMatch(/Freshest CRL/);
  });

  it("leaves out an empty revoked list, and marks a delta with its critical base number", async () => {
    const crl = await build(params(7n, { baseNumber: 5n }), batches(), signer, "delta");
    const parsed = AsnConvert.parse(crl.der, CertificateList);
    expect(parsed.tbsCertList.revokedCertificates).toBeUndefined();
    const indicator = parsed.tbsCertList.crlExtensions!.find((e) => e.extnID === "2.5.29.27")!;
    expect(indicator.critical).toBe(true);
    expect(Buffer.from(indicator.extnValue.buffer).toString("hex")).toBe("020105");
    expect(parsed.tbsCertList.crlExtensions!.some((e) => e.extnID === "2.5.29.46")).toBe(false);
  });

  it("refuses entries RFC 5280 does not allow, before anything is signed", async () => {
    let signed = 0;
    const counting: Signer = { ...signer, signDigest: async (d) => (signed++, signer.signDigest(d)) };
    await expect(build(params(1n), batches([{ serialHex: `01${"00".repeat(20)}`, revokedAt: 0, reason: 0 }]), counting, "full")).rejects.toThrow(LintError);
    await expect(build(params(1n), batches([{ serialHex: "01", revokedAt: 0, reason: 7 }]), counting, "full")).rejects.toThrow(/reason code 7/);
    await expect(build(params(1n, { nextUpdate: new Date(now.getTime() - 1000) }), batches(), counting, "full")).rejects.toThrow(/nextUpdate/);
    expect(signed).toBe(0);
  });

  it("streams a CRL larger than one part in several parts that join into one OpenSSL verifies", async () => {
    const at = now.getTime() / 1000 - 5;
    const list = Array.from({ length: 40_000 }, (_, i) => ({ serialHex: `${(0x10000000 + i).toString(16)}c0ffee`, revokedAt: at - i, reason: i % 3 === 0 ? 1 : 0 }));
    const crl = await build(params(9n), batches(list.slice(0, 25_000), list.slice(25_000)), signer, "full");
    expect(crl.parts).toBeGreaterThan(2);
    expect(crl.entries).toBe(40_000);
    const out = verifyWithOpenssl(crl.der);
    expect(out).toMatch(/CRL Number: *\n\s*9/);
    expect(out.match(/Serial Number: /g)).toHaveLength(40_000);
    expect(out).toContain("Serial Number: 10009C3FC0FFEE"); // the last entry of the second batch
  });

  it("fails, unsigned, when the entries streamed are not the ones counted (a revocation in between)", async () => {
    let signed = 0;
    const counting: Signer = { ...signer, signDigest: async (d) => (signed++, signer.signDigest(d)) };
    const entry = (serialHex: string) => ({ serialHex, revokedAt: now.getTime() / 1000 - 1, reason: 0 });
    const counted = [entry("0a"), entry("0b")];
    const oneMore: RevokedSource = { shape: async (asOf) => shapeOf(counted, asOf), [Symbol.asyncIterator]: batches(counted, [entry("0c")])[Symbol.asyncIterator] };
    await expect(build(params(3n), oneMore, counting, "full")).rejects.toThrow(CrlSourceChangedError);
    const oneLess: RevokedSource = { shape: async (asOf) => shapeOf(counted, asOf), [Symbol.asyncIterator]: batches(counted.slice(1))[Symbol.asyncIterator] };
    await expect(build(params(3n), oneLess, counting, "full")).rejects.toThrow(CrlSourceChangedError);
    expect(signed).toBe(0);
  });
});

describe("entry encoding", () => {
  it("costs 36 bytes for a 17-octet serial without reason and 50 with one", () => {
    const at = now.getTime() / 1000;
    expect(encodeEntries([{ serialHex: `01${"ab".repeat(16)}`, revokedAt: at, reason: 0 }], now).length).toBe(36);
    expect(encodeEntries([{ serialHex: `01${"ab".repeat(16)}`, revokedAt: at, reason: 1 }], now).length).toBe(50);
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

  it("refuses serials that are empty, odd, not hex, not minimal or longer than 20 octets, and undefined reasons", () => {
    for (const serialHex of ["", "abc", "zz", `01${"00".repeat(20)}`, `80${"00".repeat(19)}`, "0001"]) {
      expect(() => encodeEntries([{ serialHex, revokedAt: 0, reason: 0 }], now)).toThrow(LintError);
    }
    expect(() => encodeEntries([{ serialHex: "01", revokedAt: 0, reason: 11 }], now)).toThrow(LintError);
  });
});
