// Property tests over CSR intake: whatever the bytes, parseCsr either returns a proposal
// whose signature verified or throws a CaError("bad_request") with a sentence; it never
// crashes, hangs or throws anything else. Seeded, so a failure reproduces; set
// PKI_FUZZ_RUNS for a longer run (npm run fuzz).
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCsr } from "./csr.ts";
import { CaError } from "./errors.ts";
import { FUZZ } from "./fuzz-settings.ts";

x509.cryptoProvider.set(webcrypto as Crypto);

const RUNS = FUZZ.runs;
const SEED = FUZZ.seed;

let valid: Buffer;
beforeAll(async () => {
  const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=fuzz.example.com",
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "fuzz.example.com" },
        { type: "ip", value: "10.1.2.3" },
      ]),
    ],
  });
  valid = Buffer.from(csr.rawData);
});

/** Runs parseCsr and classifies the outcome; anything but these two is a defect. */
function outcome(input: Buffer | string): "accepted" | "refused" {
  try {
    parseCsr(input);
    return "accepted";
  } catch (error) {
    if (error instanceof CaError && error.kind === "bad_request" && error.message.length > 10) return "refused";
    throw error;
  }
}

describe("parseCsr under hostile input", () => {
  it("random bytes are refused", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => outcome(Buffer.from(bytes)) === "refused"),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("a valid CSR with one byte changed is refused or still verifies — never more", () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (position, xor) => {
        const mutated = Buffer.from(valid);
        mutated[position % mutated.length]! ^= xor;
        const result = outcome(mutated);
        // A flipped byte can only be accepted if it lies outside what the signature covers
        // and still decodes to the same canonical DER, which DER forbids: so refused.
        return result === "refused";
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("every truncation and every extension of a valid CSR is refused", () => {
    for (let length = 0; length < valid.length; length++) expect(outcome(valid.subarray(0, length))).toBe("refused");
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (tail) => outcome(Buffer.concat([valid, tail])) === "refused"),
      { numRuns: RUNS / 4, seed: SEED },
    );
  });

  it("wrong lengths and deep nesting are refused without blowing the stack", () => {
    const nested = (depth: number) => Buffer.concat([...Array.from({ length: depth }, () => Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]))]);
    expect(outcome(nested(10_000))).toBe("refused");
    const hugeLength = Buffer.from(valid);
    hugeLength[1] = 0x84; // claims a 4-byte length
    expect(outcome(hugeLength)).toBe("refused");
    expect(outcome(Buffer.alloc(1024 * 1024, 0x30))).toBe("refused");
  });

  it("PEM armour: garbage, several blocks, wrong labels, bad base64", () => {
    const pem = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
    const b64 = valid.toString("base64");
    expect(outcome(pem("CERTIFICATE REQUEST", b64))).toBe("accepted");
    expect(outcome(pem("CERTIFICATE REQUEST", b64) + pem("CERTIFICATE REQUEST", b64))).toBe("refused");
    expect(outcome(pem("CERTIFICATE", b64))).toBe("refused");
    expect(outcome(pem("CERTIFICATE REQUEST", "!!!not base64!!!"))).toBe("refused");
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (text) => outcome(pem("CERTIFICATE REQUEST", text)) === "refused" || text.replace(/\s/g, "") === b64),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
