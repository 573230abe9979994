import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
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

describe("ACME challenge validation settings", () => {
  it("default to the RFC ports and the system resolver", () => {
    const { challenges } = loadConfig({});
    expect(challenges).toMatchObject({ resolver: undefined, http01Port: 80, tlsAlpn01Port: 443 });
    expect(challenges.timeoutMs).toBeGreaterThan(0);
    expect(challenges.maxResponseBytes).toBeGreaterThan(0);
  });

  it("take a resolver as host:port and other ports for lab setups", () => {
    const { challenges } = loadConfig({ PKI_ACME_RESOLVER: "127.0.0.1:5353", PKI_ACME_HTTP01_PORT: "5002", PKI_ACME_TLSALPN01_PORT: "5001" });
    expect(challenges).toMatchObject({ resolver: "127.0.0.1:5353", http01Port: 5002, tlsAlpn01Port: 5001 });
    expect(loadConfig({ PKI_ACME_RESOLVER: "[::1]:53" }).challenges.resolver).toBe("[::1]:53");
  });

  it("refuse a resolver that is not host:port, naming the setting", () => {
    expect(() => loadConfig({ PKI_ACME_RESOLVER: "udp://8.8.8.8" })).toThrow(/PKI_ACME_RESOLVER: must be host:port/);
    expect(() => loadConfig({ PKI_ACME_HTTP01_PORT: "70000" })).toThrow(/PKI_ACME_HTTP01_PORT/);
  });
});

describe("PKI_API_WORKERS", () => {
  const pg = { DATABASE_URL: "postgresql://pki@127.0.0.1/pki" };

  it("is one per core for apps/api on PostgreSQL, and one on the embedded database and in npm start, by default", () => {
    expect(loadConfig(pg).api.workers).toBe(availableParallelism());
    expect(loadConfig(pg).api.allInOneWorkers).toBe(1);
    expect(loadConfig({}).api.workers).toBe(1);
  });

  it("takes a count, and refuses more than one without PostgreSQL, naming the setting", () => {
    expect(loadConfig({ ...pg, PKI_API_WORKERS: "3" }).api).toMatchObject({ workers: 3, allInOneWorkers: 3 });
    expect(loadConfig({ PKI_API_WORKERS: "1" }).api.workers).toBe(1);
    expect(() => loadConfig({ PKI_API_WORKERS: "2" })).toThrow(/PKI_API_WORKERS: more than one API worker needs PostgreSQL/);
    expect(() => loadConfig({ ...pg, PKI_API_WORKERS: "many" })).toThrow(/PKI_API_WORKERS/);
  });
});

describe("PKI_BOOTSTRAP_ADMIN_TOKEN", () => {
  it("takes random tokens of 128 bits or more (base64 or hex of 32 bytes, hex of 16)", () => {
    for (let i = 0; i < 50; i++) {
      for (const token of [randomBytes(32).toString("base64"), randomBytes(32).toString("hex"), `pki_admin_${randomBytes(24).toString("base64url")}`])
        expect(loadConfig({ PKI_BOOTSTRAP_ADMIN_TOKEN: token }).bootstrapAdminToken).toBe(token);
    }
    expect(loadConfig({ PKI_BOOTSTRAP_ADMIN_TOKEN: "3f9c1e7a5b2d8f4e6a0c9b1d7e3f5a2c" }).bootstrapAdminToken).toHaveLength(32);
  });

  it("refuses a token with less than 128 bits, saying how to make one and never quoting it", () => {
    const weak = [
      "correct-horse-battery", // long enough for the old 16-character rule, 21 × log2(59) ≈ 123 bits
      "0123456789abcdef0123456789abcdef0123456789abcdef", // a repeat
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", // runs
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "abababababababababababababababababababababababab",
      "Secret12Secret12Secret12Secret12Secret12",
      "0101010010110101011010100101101011010010110101101011010101101010", // two characters only
    ];
    for (const token of weak) {
      let message = "";
      try {
        loadConfig({ PKI_BOOTSTRAP_ADMIN_TOKEN: token });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, token).toMatch(/PKI_BOOTSTRAP_ADMIN_TOKEN: has about \d+ bits of entropy .* at least 128: make one with 'openssl rand -base64 32'/);
      expect(message).not.toContain(token);
    }
  });

  it("checks a token read from PKI_BOOTSTRAP_ADMIN_TOKEN_FILE alike", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pki-config-"));
    try {
      writeFileSync(path.join(dir, "weak"), "change-me-please-now\n");
      expect(() => loadConfig({ PKI_BOOTSTRAP_ADMIN_TOKEN_FILE: path.join(dir, "weak") })).toThrow(/PKI_BOOTSTRAP_ADMIN_TOKEN_FILE: has about \d+ bits/);
      const strong = randomBytes(32).toString("base64");
      writeFileSync(path.join(dir, "strong"), `${strong}\n`);
      expect(loadConfig({ PKI_BOOTSTRAP_ADMIN_TOKEN_FILE: path.join(dir, "strong") }).bootstrapAdminToken).toBe(strong);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
