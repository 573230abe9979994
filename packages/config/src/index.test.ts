import { describe, expect, it } from "vitest";
import { loadConfig } from "./index.ts";

describe("PKI_PUBLIC_URL", () => {
  it("defaults to this process's own public listener, so certificates name a URL that answers", () => {
    expect(loadConfig({ PKI_HTTP_PORT: "28080" }).publicUrl).toBe("http://127.0.0.1:28080");
    expect(loadConfig({ PKI_BIND: "0.0.0.0", PKI_HTTP_PORT: "9080" }).publicUrl).toBe("http://127.0.0.1:9080");
    expect(loadConfig({ PKI_BIND: "::1" }).publicUrl).toBe("http://[::1]:8080");
  });

  it("is taken as given when set, without a trailing slash", () => {
    expect(loadConfig({ PKI_HTTP_PORT: "28080", PKI_PUBLIC_URL: "http://pki.example.internal:8080/" }).publicUrl).toBe("http://pki.example.internal:8080");
  });
});
