import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import * as der from "@pki/der";
import { namesOf, parseCsr, parseCsrOffThread } from "./csr.ts";

x509.cryptoProvider.set(webcrypto as Crypto);

type KeyParams = EcKeyGenParams | RsaHashedKeyGenParams;
const P256: KeyParams = { name: "ECDSA", namedCurve: "P-256" };
const rsa = (bits: number, exponent = [1, 0, 1]): KeyParams => ({ name: "RSASSA-PKCS1-v1_5", modulusLength: bits, publicExponent: new Uint8Array(exponent), hash: "SHA-256" });

async function csr(options: { name?: string; sans?: x509.JsonGeneralName[]; key?: KeyParams } = {}): Promise<string> {
  const key = options.key ?? P256;
  const keys = (await webcrypto.subtle.generateKey(key, true, ["sign", "verify"])) as CryptoKeyPair;
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: options.name ?? "",
    keys,
    signingAlgorithm: key.name === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : key,
    extensions: options.sans ? [new x509.SubjectAlternativeNameExtension(options.sans)] : [],
  });
  return request.toString("pem");
}

describe("parseCsr", () => {
  it("reads the key and the proposed names from PEM and DER", async () => {
    const pem = await csr({
      name: "CN=svc.example.com",
      sans: [
        { type: "dns", value: "svc.example.com" },
        { type: "ip", value: "192.0.2.7" },
        { type: "url", value: "spiffe://prod.example/ns/a/sa/b" },
        { type: "email", value: "a@example.com" },
      ],
    });
    const proposal = parseCsr(pem);
    expect(proposal.keyAlgorithm).toBe("ECDSA-P256");
    expect(proposal.commonName).toBe("svc.example.com");
    expect(proposal.sans).toEqual([
      { type: "DNS", value: "svc.example.com" },
      { type: "IP", value: "192.0.2.7" },
      { type: "URI", value: "spiffe://prod.example/ns/a/sa/b" },
      { type: "email", value: "a@example.com" },
    ]);
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    expect(parseCsr(der)).toEqual(proposal);
  });

  it("refuses weak keys with a reason", async () => {
    expect(() => parseCsr("")).toThrow(/not PEM/);
    await expect(csr({ key: rsa(1024) }).then(parseCsr)).rejects.toThrow("RSA keys must be at least 2048 bits (this one has 1024)");
    await expect(csr({ key: rsa(2048, [3]) }).then(parseCsr)).rejects.toThrow("RSA public exponent must be 65537 (this one is 3)");
    await expect(csr({ key: { name: "ECDSA", namedCurve: "P-521" } }).then(parseCsr)).rejects.toThrow(/EC curve secp521r1 is not allowed/);
    expect(parseCsr(await csr({ name: "CN=rsa.example.com", key: rsa(3072) })).keyAlgorithm).toBe("RSA-3072");
  });

  it("refuses a CSR whose signature does not verify, and trailing garbage", async () => {
    const pem = await csr({ name: "CN=sig.example.com" });
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const tampered = Buffer.from(der);
    tampered[tampered.indexOf(Buffer.from("sig.example.com"))] = 0x78;
    expect(() => parseCsr(tampered)).toThrow("CSR signature does not verify (no proof of possession of the private key)");
    expect(() => parseCsr(Buffer.concat([der, Buffer.from([0, 0])]))).toThrow(/not DER-encoded|not a valid PKCS#10/);
    expect(() => parseCsr(der.subarray(0, der.length - 10))).toThrow(/not a valid PKCS#10/);
  });

  it("checks proof of possession for every accepted key type: its own signature verifies, another key's does not", async () => {
    const toDer = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    /** the request's info and algorithm with `signer`'s signature in place of its own */
    const withSignatureOf = (request: Buffer, signer: Buffer) => {
      const [info, algorithm] = der.children(request, der.readTlv(request));
      const [, , signature] = der.children(signer, der.readTlv(signer));
      return der.sequence(der.whole(request, info!), der.whole(request, algorithm!), der.whole(signer, signature!));
    };
    for (const [key, algorithm] of [
      [P256, "ECDSA-P256"],
      [{ name: "ECDSA", namedCurve: "P-384" }, "ECDSA-P384"],
      [rsa(2048), "RSA-2048"],
      [rsa(4096), "RSA-4096"],
    ] as const) {
      const own = toDer(await csr({ name: "CN=pop.example.com", key }));
      expect(parseCsr(own).keyAlgorithm).toBe(algorithm);
      const other = toDer(await csr({ name: "CN=pop.example.com", key }));
      expect(() => parseCsr(withSignatureOf(own, other)), algorithm).toThrow("CSR signature does not verify");
      // The API's path checks the same signature in the thread pool, with the same verdicts.
      expect(await parseCsrOffThread(own)).toEqual(parseCsr(own));
      await expect(parseCsrOffThread(withSignatureOf(own, other)), algorithm).rejects.toThrow("CSR signature does not verify");
    }
    // two RSA-4096 key pairs are generated here: seconds on a busy machine
  }, 60_000);

  it("refuses malformed names", async () => {
    await expect(csr({ sans: [{ type: "dns", value: "UPPER.example.com" }] }).then(parseCsr)).rejects.toThrow("SAN DNS:UPPER.example.com must be lower case");
    await expect(csr({ sans: [{ type: "dns", value: "localhost" }] }).then(parseCsr)).rejects.toThrow(/not a fully qualified domain name/);
    await expect(csr({ sans: [{ type: "dns", value: "a\u0000b.example.com" }] }).then(parseCsr)).rejects.toThrow(/control characters/);
    await expect(csr({ sans: [{ type: "url", value: "spiffe://prod.example:443/x" }] }).then(parseCsr)).rejects.toThrow(/not a valid SPIFFE ID/);
    await expect(csr({ sans: [{ type: "email", value: "not-an-email" }] }).then(parseCsr)).rejects.toThrow(/not an e-mail address/);
  });
});

/** A CSR whose subjectAltName holds exactly these bytes as one [tag] IA5String, as a hostile client can send. */
async function csrWithRawSan(tag: number, bytes: Buffer): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(P256, true, ["sign", "verify"])) as CryptoKeyPair;
  const san = der.sequence(der.tlv(tag, bytes));
  return (
    await x509.Pkcs10CertificateRequestGenerator.create({
      name: "",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.Extension("2.5.29.17", false, new Uint8Array(san))],
    })
  ).toString("pem");
}

describe("SAN values must be what RFC 5280 allows", () => {
  it.each([
    [0x86, "https://id.example/caf\u00e9", "utf8"],
    [0x86, "spiffe://prod.example/ns/\u00e9", "latin1"],
    [0x81, "ops\u00e9@example.com", "utf8"],
    [0x82, "caf\u00e9.example.com", "utf8"],
  ] as const)("refuses bytes outside ASCII in an IA5String SAN: [%i] %s as %s", async (tag, value, encoding) => {
    await expect(csrWithRawSan(tag, Buffer.from(value, encoding)).then(parseCsr)).rejects.toThrow(/SAN holds bytes outside ASCII, which an IA5String cannot/);
  });

  it.each([
    ["URI", "https://id.example/a b", /may not hold/],
    ["URI", "https://id.example/<script>", /may not hold/],
    ["URI", "https://id.example/a\\b", /may not hold/],
    ["URI", "https://id.example/a/../b", /'\.' or '\.\.' path segment/],
    ["URI", "https://id.example/%7Euser", /percent-encodes '~'/],
    ["URI", "https://ID.example/a", /upper-case host/],
    ["URI", "HTTPS://id.example/a", /upper-case scheme/],
    ["URI", "https://localhost/a", /not a fully qualified domain name/],
    ["URI", "https://[::1/a", /not an IPv6 address/],
    ["URI", "urn:", /nothing after it/],
    ["URI", "spiffe://prod.example/ns/a/", /ends in '\/' \(not a valid SPIFFE ID\)/],
    ["URI", "spiffe://prod.example/ns/a?x=1", /not a valid SPIFFE ID/],
    ["URI", "spiffe://prod.example/ns/a%20b", /not a valid SPIFFE ID/],
    ["URI", "spiffe://user@prod.example/ns", /not a valid SPIFFE ID/],
    ["email", "a b@example.com", /not an e-mail address/],
    ["email", "<a>@example.com", /not an e-mail address/],
    ["email", "a\\b@example.com", /not an e-mail address/],
    ["email", "a..b@example.com", /not an e-mail address/],
    ["email", '"quoted"@example.com', /no quoted local parts/],
    ["email", "a@localhost", /not a fully qualified domain name/],
    ["email", "a@[192.0.2.1]", /invalid label/],
  ] as const)("refuses %s:%s", async (type, value, message) => {
    const pem = await csrWithRawSan(type === "URI" ? 0x86 : 0x81, Buffer.from(value, "latin1"));
    await expect(Promise.resolve(pem).then(parseCsr)).rejects.toThrow(message);
  });

  it.each([
    ["URI", "spiffe://prod.example"],
    ["URI", "spiffe://prod.example/ns/payments/sa/api-1.v2_x"],
    ["URI", "https://id.example:8443/a/b%2Fc?x=1&y=%C3%A9#top"],
    ["URI", "https://[2001:db8::1]/a"],
    ["URI", "https://192.0.2.1/a"],
    ["URI", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"],
    ["email", "first.last+tag@example.com"],
    ["email", "o'brien@Example.COM"],
  ] as const)("accepts %s:%s", async (type, value) => {
    const pem = await csrWithRawSan(type === "URI" ? 0x86 : 0x81, Buffer.from(value, "latin1"));
    expect(parseCsr(pem).sans).toEqual([{ type, value }]);
  });
});

describe("namesOf", () => {
  it("copies a host-name CN into the SANs once, keeps person CNs as they are", async () => {
    expect(namesOf(parseCsr(await csr({ name: "CN=api.example.com" }))).sans).toEqual([{ type: "DNS", value: "api.example.com" }]);
    expect(namesOf(parseCsr(await csr({ name: "CN=api.example.com", sans: [{ type: "dns", value: "api.example.com" }] }))).sans).toHaveLength(1);
    const person = namesOf(parseCsr(await csr({ name: "CN=Alice Example", sans: [{ type: "email", value: "alice@example.com" }] })));
    expect(person).toEqual({ commonName: "Alice Example", sans: [{ type: "email", value: "alice@example.com" }] });
    expect(() => namesOf(parseCsr(Buffer.from([])))).toThrow();
    await expect(csr().then((p) => namesOf(parseCsr(p)))).rejects.toThrow("the CSR names no subject: give it a CN or a subjectAltName");
  });
});
