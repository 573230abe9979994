// Property tests over the OCSP request parser: whatever the bytes, it returns a parsed
// request or throws MalformedOcspRequest (answered as malformedRequest); never anything
// else. Seeded; PKI_FUZZ_RUNS raises the count (npm run fuzz).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { MalformedOcspRequest, parseOcspRequest } from "./request.ts";
import { FUZZ } from "../fuzz-settings.ts";

const RUNS = FUZZ.runs;
const SEED = FUZZ.seed;

let valid: Buffer;
beforeAll(() => {
  // A real request from OpenSSL, with a nonce and two certificates.
  const dir = mkdtempSync(path.join(tmpdir(), "pki-ocsp-fuzz-"));
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Fuzz CA", "-days", "1"]);
  for (const name of ["a", "b"]) {
    run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
    run(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1"]);
  }
  // With no responder URL openssl writes the request and then exits non-zero; the file is what we want.
  try {
    run(["ocsp", "-sha256", "-issuer", "ca.pem", "-cert", "a.pem", "-cert", "b.pem", "-reqout", "req.der"]);
  } catch {
    // checked by reading the file below
  }
  valid = readFileSync(path.join(dir, "req.der"));
});

function outcome(bytes: Buffer): "parsed" | "malformed" {
  try {
    parseOcspRequest(bytes);
    return "parsed";
  } catch (error) {
    if (error instanceof MalformedOcspRequest) return "malformed";
    throw error;
  }
}

describe("parseOcspRequest under hostile input", () => {
  it("reads the OpenSSL request it is given", () => {
    const parsed = parseOcspRequest(valid);
    expect(parsed.requests).toHaveLength(2);
  });

  it("random bytes are malformed, never a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => outcome(Buffer.from(bytes)) === "malformed"),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("a real request with bytes changed, cut or extended is parsed or malformed, never a crash", () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (position, xor) => {
        const mutated = Buffer.from(valid);
        mutated[position % mutated.length]! ^= xor;
        outcome(mutated);
        return true;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    for (let length = 0; length < valid.length; length++) expect(outcome(valid.subarray(0, length))).toBe("malformed");
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), (tail) => outcome(Buffer.concat([valid, tail])) === "malformed"),
      { numRuns: RUNS / 4, seed: SEED },
    );
  });

  it("deep nesting and absurd lengths are malformed", () => {
    const nested = Buffer.concat(Array.from({ length: 5000 }, () => Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff])));
    expect(outcome(nested)).toBe("malformed");
    const huge = Buffer.from(valid);
    huge[1] = 0x84;
    expect(outcome(huge)).toBe("malformed");
  });
});
