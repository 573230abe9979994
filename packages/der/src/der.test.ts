import fc from "fast-check";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Time } from "@peculiar/asn1-x509";
import { describe, expect, it } from "vitest";
import { OctetString } from "@peculiar/asn1-schema";
import { DerError, children, decodeOid, decodeTime, octetString, oid, readTlv, sequence, time, tlv, unsignedInteger, TAG } from "./index.ts";

describe("DER", () => {
  it("encodes OIDs, integers and times as the reference library does", () => {
    for (const dotted of ["2.5.29.17", "1.2.840.10045.4.3.2", "1.3.6.1.5.5.7.48.1.5", "2.999.3", "1.2.840.113549.1.9.14"]) {
      expect(decodeOid(oid(dotted).subarray(2))).toBe(dotted);
    }
    fc.assert(
      fc.property(fc.date({ min: new Date("1950-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), (d) => {
        const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
        const ours = time(whole);
        expect(ours.equals(Buffer.from(AsnConvert.serialize(new Time(whole))))).toBe(true);
        expect(decodeTime(ours, readTlv(ours)).getTime()).toBe(whole.getTime());
      }),
      { numRuns: 500, seed: 1 },
    );
    expect(unsignedInteger(Buffer.from([0, 0, 0x80])).toString("hex")).toBe("02020080");
    expect(unsignedInteger(Buffer.from([0, 0x7f])).toString("hex")).toBe("02017f");
  });

  it("writes every length form as the reference library does, for one part or several", () => {
    const lengths = fc.oneof(fc.constantFrom(0, 1, 127, 128, 255, 256, 65_535, 65_536, 70_000), fc.integer({ min: 0, max: 3000 }));
    fc.assert(
      fc.property(lengths, fc.integer({ min: 1, max: 4 }), (length, pieces) => {
        const bytes = Buffer.alloc(length, 0xa5);
        const reference = Buffer.from(AsnConvert.serialize(new OctetString(bytes)));
        expect(octetString(bytes).equals(reference)).toBe(true);
        // the same bytes given in pieces
        const cut = Array.from({ length: pieces }, (_, i) => bytes.subarray(Math.floor((i * length) / pieces), Math.floor(((i + 1) * length) / pieces)));
        expect(tlv(TAG.OCTET_STRING, ...cut).equals(reference)).toBe(true);
      }),
      { numRuns: 300, seed: 2 },
    );
  });

  it("reads nested values and refuses malformed lengths", () => {
    const value = sequence(oid("2.5.29.17"), sequence(unsignedInteger(Buffer.from([5]))));
    const outer = readTlv(value);
    const [first, second] = children(value, outer);
    expect(first!.tag).toBe(TAG.OID);
    expect(children(value, second!)).toHaveLength(1);
    expect(() => readTlv(Buffer.from([0x30, 0x80]))).toThrow(DerError);
    expect(() => readTlv(Buffer.from([0x30, 0x81, 0x05, 0, 0, 0, 0, 0]))).toThrow(/not minimal/);
    expect(() => readTlv(Buffer.from([0x30, 0x05, 0]))).toThrow(/runs past/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const t = readTlv(bytes);
          if (t.tag & 0x20) children(bytes, t);
        } catch (error) {
          expect(error).toBeInstanceOf(DerError);
        }
      }),
      { numRuns: 3000, seed: 2 },
    );
  });
});
