import "reflect-metadata";
import { generateKeyPairSync } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { subjectKeyIdentifier } from "./key-identifier.ts";
import { encodeLeafTbs, leafTemplate } from "./leaf-tbs.ts";
import { buildName, buildTbs, caExtensions, newSerial } from "./tbs.ts";
import { serialize } from "./der.ts";
import { KEY_USAGE_BITS, PROFILES, keyUsageBits, keyUsagesFor, type CertificateProfileName, type KeyUsageName } from "./profiles.ts";
import type { KeyAlgorithm } from "./algorithms.ts";

const spki = {
  "ECDSA-P256": generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
  "RSA-2048": generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }),
} as const;
const issuer = { subjectDer: serialize(buildName({ commonName: "Issuing CA" })), subjectKeyId: subjectKeyIdentifier(spki["ECDSA-P256"]), keyAlgorithm: "ECDSA-P256" as const };
const urls = { crl: "http://ca.test/crl/i.crl", ocsp: "http://ca.test/ocsp", caIssuers: "http://ca.test/ca/i.crt" };

/** The certificate a profile row produces, read back by an independent parser (@peculiar/x509). */
function encoded(name: CertificateProfileName, keyAlgorithm: keyof typeof spki): x509.X509Certificate {
  const profile = PROFILES[name];
  const common = { serial: newSerial().bytes, notBefore: new Date("2030-01-01T00:00:00Z"), notAfter: new Date("2030-02-01T00:00:00Z"), publicKeySpki: spki[keyAlgorithm] };
  const tbs = profile.basicConstraints.ca
    ? buildTbs({ ...common, issuer, subject: buildName({ commonName: "Some CA" }), extensions: caExtensions({ profile, publicKeySpki: spki[keyAlgorithm], keyAlgorithm, issuer, urls }) })
    : encodeLeafTbs(leafTemplate(issuer, urls), { ...common, commonName: undefined, keyAlgorithm, profile, sans: [{ type: "URI", value: "https://svc.example/a" }] });
  // A certificate with a placeholder signature: only the extensions are read here.
  const der = Buffer.concat([Buffer.from([0x30, 0x82]), Buffer.alloc(2), tbs, Buffer.from("300a06082a8648ce3d040302030100", "hex")]);
  der.writeUInt16BE(der.length - 4, 2);
  return new x509.X509Certificate(der);
}

const usagesOf = (cert: x509.X509Certificate): KeyUsageName[] => {
  const ext = cert.getExtension(x509.KeyUsagesExtension);
  return (Object.keys(KEY_USAGE_BITS) as KeyUsageName[]).filter((name) => ext && ext.usages & (1 << KEY_USAGE_BITS[name]));
};

describe("certificate profiles are data the encoders follow", () => {
  for (const name of Object.keys(PROFILES) as CertificateProfileName[]) {
    for (const keyAlgorithm of Object.keys(spki) as KeyAlgorithm[] as (keyof typeof spki)[]) {
      it(`${name} with ${keyAlgorithm}: key usage, EKU, basic constraints and OCSP no-check as the table says`, () => {
        const profile = PROFILES[name];
        const cert = encoded(name, keyAlgorithm);
        expect(usagesOf(cert).sort()).toEqual([...keyUsagesFor(profile, keyAlgorithm)].sort());
        expect(cert.getExtension(x509.KeyUsagesExtension)?.critical).toBe(true);
        const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
        expect(eku?.usages ?? []).toEqual(profile.extendedKeyUsages);
        const bc = cert.getExtension(x509.BasicConstraintsExtension);
        expect(bc?.ca ?? false).toBe(profile.basicConstraints.ca);
        expect(bc?.pathLength).toBe(profile.basicConstraints.ca ? profile.basicConstraints.pathLength : undefined);
        expect(cert.getExtension("1.3.6.1.5.5.7.48.1.5") !== null).toBe("ocspNoCheck" in profile && profile.ocspNoCheck === true);
      });
    }
  }

  it("keyUsage bits are minimal DER (no trailing zero bits)", () => {
    expect(keyUsageBits(["digitalSignature"])).toEqual({ bytes: Buffer.from([0x80]), unusedBits: 7 });
    expect(keyUsageBits(["digitalSignature", "keyEncipherment"])).toEqual({ bytes: Buffer.from([0xa0]), unusedBits: 5 });
    expect(keyUsageBits(["digitalSignature", "keyCertSign", "cRLSign"])).toEqual({ bytes: Buffer.from([0x86]), unusedBits: 1 });
  });
});
