import { describe, expect, it } from "vitest";
import { takes } from "./issuing-lane.ts";

const lane = { method: "POST", path: "/v1/certificates", maxBodyBytes: 1024 } as const;
const request = (over: { method?: string; url?: string; headers?: Record<string, string> } = {}) => ({
  method: over.method ?? "POST",
  url: over.url ?? "/v1/certificates",
  headers: { "content-type": "application/json", "content-length": "300", ...over.headers },
});

describe("which requests the issuing lane takes", () => {
  it("takes a plain JSON issuing request, with or without charset=utf-8", () => {
    expect(takes(lane, request())).toBe(true);
    expect(takes(lane, request({ headers: { "content-type": "Application/JSON; charset=UTF-8" } }))).toBe(true);
  });

  it("leaves everything express must read its own way to express", () => {
    expect(takes(lane, request({ method: "GET" }))).toBe(false);
    expect(takes(lane, request({ url: "/v1/certificates?profile=mtls" }))).toBe(false);
    expect(takes(lane, request({ url: "/v1/certificates/renew" }))).toBe(false);
    expect(takes(lane, request({ headers: { "content-type": "application/pkcs10" } }))).toBe(false);
    expect(takes(lane, request({ headers: { "content-type": "application/json; charset=latin1" } }))).toBe(false);
    expect(takes(lane, request({ headers: { "content-encoding": "gzip" } }))).toBe(false);
    expect(takes(lane, request({ headers: { "transfer-encoding": "chunked" } }))).toBe(false);
    expect(takes(lane, request({ headers: { "content-length": "0" } }))).toBe(false);
    expect(takes(lane, request({ headers: { "content-length": "1025" } }))).toBe(false);
  });
});
