// OCSP request parsing against requests made by OpenSSL, and against broken input.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MalformedOcspRequest, parseOcspRequest } from "./request.ts";

let dir: string;
let caPath: string;
const request = (args: string[]) => {
  const out = path.join(dir, `req-${Math.random().toString(36).slice(2)}.der`);
  execFileSync("openssl", ["ocsp", "-issuer", caPath, ...args, "-reqout", out], { stdio: "ignore" });
  return readFileSync(out);
};
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "ocsp-unit-"));
  caPath = path.join(dir, "ca.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, "ca.key"), "-subj", "/CN=Unit OCSP CA", "-days", "1", "-out", caPath],
    { stdio: "ignore" },
  );
});

describe("parseOcspRequest", () => {
  it("calls only a one-CertID request without extensions plain: the only shape a cache may key on", () => {
    const plain = request(["-serial", "0x01abcdef", "-no_nonce"]);
    expect(parseOcspRequest(plain).plain).toBe(true);
    expect(plain.length).toBeLessThanOrEqual(160);
    expect(parseOcspRequest(request(["-sha256", "-serial", "0x01abcdef", "-no_nonce"])).plain).toBe(true);
    expect(parseOcspRequest(request(["-serial", "0x01abcdef"])).plain).toBe(false); // a nonce extension
    expect(parseOcspRequest(request(["-serial", "0x01", "-serial", "0x02", "-no_nonce"])).plain).toBe(false);
  });

  it("reads SHA-1 and SHA-256 CertIDs, several requests, and the nonce", () => {
    const parsed = parseOcspRequest(request(["-serial", "0x01abcdef", "-sha256", "-serial", "0x7f"]));
    expect(parsed.requests.map((r) => [r.hash, r.serialHex])).toEqual([
      ["sha1", "01abcdef"],
      ["sha256", "7f"],
    ]);
    expect(parsed.requests[0]!.issuerNameHash).toHaveLength(20);
    expect(parsed.requests[1]!.issuerKeyHash).toHaveLength(32);
    expect(parsed.nonce).toBeDefined();
    expect(parsed.nonce!.length).toBeGreaterThan(0);
    expect(parseOcspRequest(request(["-serial", "0x01", "-no_nonce"])).nonce).toBeUndefined();
  });

  it("strips the sign-padding octet so serials match the inventory's hex", () => {
    expect(parseOcspRequest(request(["-serial", "0x80ff", "-no_nonce"])).requests[0]!.serialHex).toBe("80ff");
  });

  it("refuses garbage, truncation, trailing bytes and empty input as malformed", () => {
    const good = request(["-serial", "0x01", "-no_nonce"]);
    for (const bad of [Buffer.alloc(0), Buffer.from("not der at all"), good.subarray(0, good.length - 3), Buffer.concat([good, Buffer.from([0])]), Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])]) {
      expect(() => parseOcspRequest(bad)).toThrow(MalformedOcspRequest);
    }
  });

  it("refuses more than 32 certificates in one request", () => {
    const serials = Array.from({ length: 33 }, (_, i) => ["-serial", `0x${(i + 1).toString(16)}`]).flat();
    expect(() => parseOcspRequest(request([...serials, "-no_nonce"]))).toThrow(/at most 32/);
  });
});
