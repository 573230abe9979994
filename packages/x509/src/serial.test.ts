import { describe, expect, it } from "vitest";
import { canonicalSerial, serialPrefix } from "./serial.ts";

describe("canonicalSerial", () => {
  it("keeps the inventory's own form", () => {
    expect(canonicalSerial("01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c")).toBe("01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c");
  });

  it("lowercases what openssl x509 -serial prints", () => {
    expect(canonicalSerial("01A3F29C5B7E4D2A9F0C1B2D3E4F5A6B7C")).toBe("01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c");
  });

  it("joins the colon-separated byte pairs browsers show, in either case", () => {
    expect(canonicalSerial("01:A3:f2:9C")).toBe("01a3f29c");
    expect(canonicalSerial("  01:a3  ")).toBe("01a3");
  });

  it("puts back the 00 byte openssl leaves out before a high bit, and drops redundant ones", () => {
    expect(canonicalSerial("8A12")).toBe("008a12");
    expect(canonicalSerial("00:8A:12")).toBe("008a12");
    expect(canonicalSerial("0001a3")).toBe("01a3");
    expect(canonicalSerial("1a3")).toBe("01a3");
    expect(canonicalSerial("00")).toBe("00");
  });

  it("refuses what is not a serial", () => {
    for (const bad of ["", "xyz", "01:a3:", "01::a3", "0:1a", "01 a3", "g1", "01-a3", "a".repeat(41), `00${"8".repeat(40)}`]) expect(canonicalSerial(bad), bad).toBeUndefined();
  });

  it("takes 20 octets at most (RFC 5280)", () => {
    expect(canonicalSerial("7f".repeat(20))).toBe("7f".repeat(20));
    expect(canonicalSerial("7f".repeat(21))).toBeUndefined();
  });
});

describe("serialPrefix", () => {
  it("lowercases and joins a typed start of a serial, a half byte included", () => {
    expect(serialPrefix("01A3F")).toBe("01a3f");
    expect(serialPrefix("01:A3:F")).toBe("01a3f");
    expect(serialPrefix("01:A3:")).toBe("01a3");
  });

  it("adds the 00 byte the inventory stores before a high first byte", () => {
    expect(serialPrefix("8A")).toBe("008a");
  });

  it("refuses what cannot start a serial", () => {
    for (const bad of ["", "api.example", "01-a3", "f".repeat(41)]) expect(serialPrefix(bad), bad).toBeUndefined();
  });
});
