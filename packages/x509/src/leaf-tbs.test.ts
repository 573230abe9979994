import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeLeafTbs, leafTemplate } from "./leaf-tbs.ts";
import { buildName, buildTbs, leafExtensions, newSerial } from "./tbs.ts";
import { subjectKeyIdentifier } from "./key-identifier.ts";
import { serialize } from "./der.ts";
import { PROFILES, type CertificateProfileName } from "./profiles.ts";
import type { San } from "./names.ts";

const keys = {
  "ECDSA-P256": generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
  "ECDSA-P384": generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ type: "spki", format: "der" }),
  "RSA-2048": generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }),
} as const;

const sanArb: fc.Arbitrary<San> = fc.oneof(
  fc.domain().map((d) => ({ type: "DNS" as const, value: d.toLowerCase() })),
  fc.ipV4().map((v) => ({ type: "IP" as const, value: v })),
  // @peculiar/asn1-x509 mis-encodes IPv6 with an embedded IPv4 tail (see the test below),
  // so the comparison uses plain IPv6 forms only.
  fc
    .ipV6()
    .filter((v) => !v.includes("."))
    .map((v) => ({ type: "IP" as const, value: v })),
  fc.webUrl().map((v) => ({ type: "URI" as const, value: v })),
  fc.emailAddress().map((v) => ({ type: "email" as const, value: v })),
);

describe("fast leaf TBS encoder", () => {
  it("produces exactly the general builder's bytes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(keys) as (keyof typeof keys)[])),
        fc.constantFrom(...(Object.keys(keys) as (keyof typeof keys)[])),
        fc.constantFrom(...(Object.keys(PROFILES) as CertificateProfileName[]).filter((name) => !PROFILES[name].basicConstraints.ca)),
        fc.option(fc.string({ minLength: 1, maxLength: 64 }), { nil: undefined }),
        fc.array(sanArb, { minLength: 1, maxLength: 6 }),
        fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2080-01-01T00:00:00Z"), noInvalidDate: true }),
        fc.boolean(),
        (issuerKey, leafKey, profile, commonName, sans, start, delta) => {
          const issuer = { subjectDer: serialize(buildName({ commonName: "Issuing CA", organization: "Example" })), subjectKeyId: subjectKeyIdentifier(keys[issuerKey]), keyAlgorithm: issuerKey };
          const urls = { crl: "http://ca.test/crl/i.crl", ocsp: "http://ca.test/ocsp", caIssuers: "http://ca.test/ca/i.crt", ...(delta ? { deltaCrl: "http://ca.test/crl/i-delta.crl" } : {}) };
          const notBefore = new Date(Math.floor(start.getTime() / 1000) * 1000);
          const notAfter = new Date(notBefore.getTime() + 86_400_000);
          const serial = newSerial().bytes;
          const reference = buildTbs({
            serial,
            issuer,
            subject: buildName({ commonName }),
            publicKeySpki: keys[leafKey],
            notBefore,
            notAfter,
            extensions: leafExtensions({ publicKeySpki: keys[leafKey], keyAlgorithm: leafKey, issuer, profile: PROFILES[profile], sans, subjectEmpty: commonName === undefined, urls }),
          });
          const fast = encodeLeafTbs(leafTemplate(issuer, urls), { serial, notBefore, notAfter, commonName, publicKeySpki: keys[leafKey], keyAlgorithm: leafKey, profile: PROFILES[profile], sans });
          expect(fast.toString("hex")).toBe(reference.toString("hex"));
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});

describe("IP SANs", () => {
  it("encode IPv6 with an embedded IPv4 tail correctly (the general library does not)", () => {
    const issuer = { subjectDer: serialize(buildName({ commonName: "Issuing CA" })), subjectKeyId: Buffer.alloc(20, 1), keyAlgorithm: "ECDSA-P256" as const };
    const template = leafTemplate(issuer, { crl: "http://c/c.crl", ocsp: "http://c/o", caIssuers: "http://c/i.crt" });
    const tbs = encodeLeafTbs(template, {
      serial: newSerial().bytes,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 1000),
      commonName: undefined,
      publicKeySpki: keys["ECDSA-P256"],
      keyAlgorithm: "ECDSA-P256",
      profile: PROFILES.server,
      sans: [
        { type: "IP", value: "::ffff:1.2.3.4" },
        { type: "IP", value: "2001:db8::1" },
      ],
    });
    expect(tbs.toString("hex")).toContain("871000000000000000000000ffff01020304");
    expect(tbs.toString("hex")).toContain("871020010db8000000000000000000000001");
  });
});
