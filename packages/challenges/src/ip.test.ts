import { describe, expect, it } from "vitest";
import { ipBytes, reverseName } from "./ip.ts";

describe("IP addresses for tls-alpn-01 on IP identifiers", () => {
  it("gives the RFC 8738 §6 reverse-mapping names", () => {
    expect(reverseName("192.0.2.7")).toBe("7.2.0.192.in-addr.arpa");
    expect(reverseName("2001:db8::567:89ab")).toBe("b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  });

  it("reads every IPv6 spelling of one address as the same bytes", () => {
    const expected = ipBytes("0:0:0:0:0:ffff:7f00:1");
    for (const spelling of ["::ffff:127.0.0.1", "::FFFF:7F00:1", "0::ffff:7f00:0001"]) expect(ipBytes(spelling).equals(expected)).toBe(true);
    expect(ipBytes("::1")).toEqual(Buffer.from([...Array(15).fill(0), 1]));
    expect(ipBytes("fe80::")).toEqual(Buffer.from([0xfe, 0x80, ...Array(14).fill(0)]));
  });

  it("refuses what is not an address", () => {
    expect(() => ipBytes("site.test")).toThrow("not an IP address");
  });
});
