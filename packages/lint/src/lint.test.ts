// The lint must catch what a buggy profile or builder would produce. Each case starts
// from a certificate the builder makes correctly and breaks one thing.
import { generateKeyPairSync } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicConstraints, ExtendedKeyUsage, Extension, TBSCertificate, id_ce_basicConstraints, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { OctetString } from "@peculiar/asn1-schema";
import { describe, expect, it } from "vitest";
import { PROFILES, buildName, buildTbs, caExtensions, leafExtensions, newSerial, serialize, subjectKeyIdentifier } from "@pki/x509";
import { assertLintClean, lintCertificate } from "./index.ts";

const spki = (type: "ec" | "rsa" = "ec", bits = 2048) =>
  (type === "ec" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: bits })).publicKey.export({ type: "spki", format: "der" });

const issuerSpki = spki();
const issuerSubject = buildName({ commonName: "Test Issuing CA" });
const issuer = { subjectDer: serialize(issuerSubject), subjectKeyId: subjectKeyIdentifier(issuerSpki), keyAlgorithm: "ECDSA-P256" as const };
const issuerFacts = { subjectDer: issuer.subjectDer, spki: issuerSpki, notAfter: new Date("2030-01-01T00:00:00Z"), subjectKeyId: issuer.subjectKeyId };
const urls = { crl: "http://ca.test/crl/x.crl", ocsp: "http://ca.test/ocsp", caIssuers: "http://ca.test/ca/x.crt" };

function leaf(
  overrides: { key?: Buffer; notBefore?: Date; notAfter?: Date; serial?: Buffer; cn?: string; sans?: { type: "DNS"; value: string }[]; mutate?: (tbs: TBSCertificate) => void } = {},
): Buffer {
  const key = overrides.key ?? spki();
  const sans = overrides.sans ?? [{ type: "DNS" as const, value: "svc.example.com" }];
  const der = buildTbs({
    serial: overrides.serial ?? newSerial().bytes,
    issuer,
    subject: buildName({ commonName: overrides.cn }),
    publicKeySpki: key,
    notBefore: overrides.notBefore ?? new Date("2026-11-23T00:00:00Z"),
    notAfter: overrides.notAfter ?? new Date("2026-11-24T00:00:00Z"),
    extensions: leafExtensions({ publicKeySpki: key, keyAlgorithm: "ECDSA-P256", issuer, profile: PROFILES.server, sans, subjectEmpty: !overrides.cn, urls }),
  });
  if (!overrides.mutate) return der;
  const tbs = AsnConvert.parse(der, TBSCertificate);
  overrides.mutate(tbs);
  return serialize(tbs);
}

const rules = (der: Buffer, kind: "leaf" | "intermediate" | "root" = "leaf") => lintCertificate(der, { kind, ...(kind === "root" ? {} : { issuer: issuerFacts }) }).map((f) => f.rule);

describe("lint", () => {
  it("passes what the builder makes", () => {
    expect(rules(leaf())).toEqual([]);
    expect(rules(leaf({ cn: "svc.example.com" }))).toEqual([]);
    expect(() => assertLintClean(leaf(), { kind: "leaf", issuer: issuerFacts })).not.toThrow();
  });

  it("catches a leaf that outlives its issuer", () => {
    expect(rules(leaf({ notAfter: new Date("2031-01-01T00:00:00Z") }))).toContain("e_outlives_issuer");
  });

  it("catches validity in the wrong order and wrong time encodings", () => {
    expect(rules(leaf({ notBefore: new Date("2026-11-25T00:00:00Z") }))).toContain("e_validity_order");
    const generalized = leaf({ mutate: (t) => ((t.validity.notAfter.generalTime = t.validity.notAfter.utcTime), (t.validity.notAfter.utcTime = undefined)) });
    expect(rules(generalized)).toContain("e_time_encoding");
  });

  it("catches bad serials", () => {
    expect(rules(leaf({ serial: Buffer.from([0x01, 0x02]) }))).toContain("e_serial_low_entropy");
    expect(rules(leaf({ serial: Buffer.alloc(21, 0x11) }))).toContain("e_serial_too_long");
    expect(rules(leaf({ serial: Buffer.from([0x80, ...Array(16).fill(1)]) }))).toContain("e_serial_not_positive");
  });

  it("catches a leaf that claims to be a CA, and missing EKU, SAN, CDP", () => {
    const ca = leaf({ mutate: (t) => (t.extensions!.find((e) => e.extnID === id_ce_basicConstraints)!.extnValue = new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true })))) });
    expect(rules(ca)).toContain("e_leaf_is_ca");
    const noSan = leaf({ cn: "svc.example.com", mutate: (t) => (t.extensions = t.extensions!.filter((e) => e.extnID !== id_ce_subjectAltName) as never) });
    expect(rules(noSan)).toContain("e_server_auth_san_missing");
    const clientOnly = leaf({
      cn: "batch-nightly",
      mutate: (t) => {
        t.extensions!.find((e) => e.extnID === "2.5.29.37")!.extnValue = new OctetString(AsnConvert.serialize(new ExtendedKeyUsage(["1.3.6.1.5.5.7.3.2"])));
        t.extensions = t.extensions!.filter((e) => e.extnID !== id_ce_subjectAltName) as never;
      },
    });
    expect(rules(clientOnly)).toEqual([]); // RFC 5280: a subject CN alone names a client
    const unnamed = leaf({ mutate: (t) => (t.extensions = t.extensions!.filter((e) => e.extnID !== id_ce_subjectAltName) as never) });
    expect(rules(unnamed)).toContain("e_subject_empty_without_san");
    const noCdp = leaf({ mutate: (t) => (t.extensions = t.extensions!.filter((e) => e.extnID !== "2.5.29.31") as never) });
    expect(rules(noCdp)).toContain("e_leaf_crl_dp_missing");
  });

  it("catches an empty subject with a non-critical SAN, duplicates and unknown critical extensions", () => {
    const nonCritical = leaf({ mutate: (t) => (t.extensions!.find((e) => e.extnID === id_ce_subjectAltName)!.critical = false) });
    expect(rules(nonCritical)).toContain("e_subject_empty_san_not_critical");
    const duplicate = leaf({ mutate: (t) => t.extensions!.push(t.extensions![0]!) });
    expect(rules(duplicate)).toContain("e_ext_duplicate");
    const unknown = leaf({ mutate: (t) => t.extensions!.push(new Extension({ extnID: "1.2.3.4", critical: true, extnValue: new OctetString(new Uint8Array([5, 0]).buffer) })) });
    expect(rules(unknown)).toContain("e_ext_unknown_critical");
  });

  it("catches weak keys and AKI / issuer-name mismatches", () => {
    expect(rules(leaf({ key: spki("rsa", 1024) }))).toContain("e_weak_or_unknown_key");
    const otherIssuer = lintCertificate(leaf(), { kind: "leaf", issuer: { ...issuerFacts, subjectKeyId: Buffer.alloc(20, 1) } }).map((f) => f.rule);
    expect(otherIssuer).toContain("e_aki_mismatch");
    const renamed = lintCertificate(leaf(), { kind: "leaf", issuer: { ...issuerFacts, subjectDer: serialize(buildName({ commonName: "Someone Else" })) } }).map((f) => f.rule);
    expect(renamed).toContain("e_issuer_name_mismatch");
  });

  it("checks CA certificates: basicConstraints, keyCertSign, pathLen", () => {
    const key = spki();
    const intermediate = buildTbs({
      serial: newSerial().bytes,
      issuer,
      subject: buildName({ commonName: "Sub CA" }),
      publicKeySpki: key,
      notBefore: new Date("2026-11-23T00:00:00Z"),
      notAfter: new Date("2027-11-23T00:00:00Z"),
      extensions: caExtensions({ profile: PROFILES.intermediate, publicKeySpki: key, keyAlgorithm: "ECDSA-P256", issuer, urls }),
    });
    expect(rules(intermediate, "intermediate")).toEqual([]);
    const noPathLen = buildTbs({
      serial: newSerial().bytes,
      issuer,
      subject: buildName({ commonName: "Sub CA" }),
      publicKeySpki: key,
      notBefore: new Date("2026-11-23T00:00:00Z"),
      notAfter: new Date("2027-11-23T00:00:00Z"),
      extensions: caExtensions({ profile: PROFILES.root, publicKeySpki: key, keyAlgorithm: "ECDSA-P256", issuer, urls }),
    });
    expect(rules(noPathLen, "intermediate")).toContain("e_intermediate_path_len");
    expect(rules(leaf(), "intermediate")).toEqual(expect.arrayContaining(["e_ca_basic_constraints", "e_ca_without_key_cert_sign", "e_ski_mismatch"].filter((r) => r !== "e_ski_mismatch")));
  });
});
