import { describe, expect, it } from "vitest";
import { CaError, parseSan } from "@pki/ca-core";
import { ProvisionerPolicy, compileNamePattern } from "./index.ts";

const payments = ProvisionerPolicy.create({
  name: "payments",
  profiles: ["mtls", "client"],
  names: ["DNS:api.payments.example", "DNS:*.svc.payments.example", "DNS:.internal.example", "IP:10.20.0.0/16", "IP:fd00:20::/32", "URI:spiffe://prod.example/ns/payments/*", "email:@payments.example", "CN:batch-*"],
  maxTtlSeconds: 3600,
});

const check = (...sans: string[]) => () => payments.authorizeNames({ commonName: undefined, sans: sans.map(parseSan) });

function refusal(fn: () => void): { kind: string; message: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof CaError) return { kind: error.kind, message: error.message };
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("provisioner name policy", () => {
  it.each([
    "DNS:api.payments.example",
    "DNS:web.svc.payments.example",
    "DNS:*.svc.payments.example",
    "DNS:a.internal.example",
    "DNS:a.b.c.internal.example",
    "IP:10.20.255.1",
    "IP:fd00:20::1",
    "URI:spiffe://prod.example/ns/payments/sa/api",
    "email:ops@payments.example",
  ])("allows %s", (san) => {
    expect(check(san)).not.toThrow();
  });

  it.each([
    ["DNS:evil.example", "SAN DNS:evil.example is not allowed for provisioner 'payments'"],
    ["DNS:www.api.payments.example", "SAN DNS:www.api.payments.example is not allowed for provisioner 'payments'"],
    ["DNS:a.b.svc.payments.example", "one label only under a wildcard"],
    ["DNS:internal.example", "a suffix does not grant the parent itself"],
    ["DNS:xinternal.example", "suffix matching is on a label boundary"],
    ["IP:10.21.0.1", "outside the range"],
    ["IP:::ffff:10.20.0.1", "an IPv4-mapped IPv6 address is not the IPv4 range"],
    ["URI:spiffe://prod.example/ns/payroll/sa/api", "a sibling path"],
    ["URI:spiffe://prod.example/ns/payments/", "the prefix itself is not a workload"],
    ["URI:https://prod.example/ns/payments/sa/api", "another scheme"],
    ["email:ops@evil.example", "another domain"],
    ["email:ops@sub.payments.example", "a subdomain needs @.payments.example"],
  ])("refuses %s (%s)", (san) => {
    const r = refusal(check(san));
    expect(r.kind).toBe("forbidden");
    expect(r.message).toBe(`SAN ${san} is not allowed for provisioner 'payments'`);
  });

  it("refuses the whole request when one SAN of several is not allowed, naming that SAN", () => {
    expect(refusal(check("DNS:api.payments.example", "DNS:evil.example", "IP:10.20.0.1")).message).toBe("SAN DNS:evil.example is not allowed for provisioner 'payments'");
  });

  it("allows a CN that is one of the SANs or matches a CN: pattern, and nothing else", () => {
    const sans = [parseSan("DNS:api.payments.example")];
    expect(() => payments.authorizeNames({ commonName: "api.payments.example", sans })).not.toThrow();
    expect(() => payments.authorizeNames({ commonName: "batch-nightly", sans })).not.toThrow();
    expect(refusal(() => payments.authorizeNames({ commonName: "root of all payments", sans })).message).toBe("CN 'root of all payments' is not allowed for provisioner 'payments'");
    expect(refusal(() => payments.authorizeNames({ commonName: "batch-", sans })).kind).toBe("forbidden");
  });

  it("scopes profiles", () => {
    expect(() => payments.authorizeProfile("mtls")).not.toThrow();
    expect(refusal(() => payments.authorizeProfile("server"))).toEqual({ kind: "forbidden", message: "profile 'server' is not allowed for provisioner 'payments' (allowed: mtls, client)" });
  });
});

describe("creating a policy refuses what an admin cannot have meant", () => {
  it.each([
    ["DNS:*.*.example.com", /only use '\*' as its whole first label/],
    ["DNS:a*.example.com", /only use '\*' as its whole first label/],
    ["DNS:localhost", /not a fully qualified domain name/],
    ["DNS:Bad_Name.example", /invalid label/],
    ["IP:10.0.0.0/33", /prefix length that is not 0 to 32/],
    ["IP:10.0.0/8", /IPv4 or IPv6 address/],
    ["IP:fd00::/129", /prefix length that is not 0 to 128/],
    ["URI:spiffe://prod.example/ns/pay*", /must end in '\/\*'/],
    ["URI:spiffe://prod.example/*/sa", /only use '\*' at its very end/],
    ["URI:not a uri", /not an absolute URI/],
    ["email:@", /e-mail address|not usable/],
    ["ftp:example.com", /unknown type 'ftp'/],
    ["example.com", /must look like DNS:/],
  ])("%s", (pattern, message) => {
    const r = refusal(() => compileNamePattern(pattern));
    expect(r.kind).toBe("bad_request");
    expect(r.message).toMatch(message);
    expect(r.message).toContain(`name pattern '${pattern}'`);
  });

  it("checks profiles, the name and the lifetime", () => {
    const base = { name: "ok", profiles: ["mtls"], names: ["DNS:.example.com"], maxTtlSeconds: 3600 };
    expect(refusal(() => ProvisionerPolicy.create({ ...base, profiles: ["codesigning"] })).message).toBe("unknown profile 'codesigning'; use one of mtls, server, client");
    expect(refusal(() => ProvisionerPolicy.create({ ...base, profiles: [] })).message).toMatch(/needs at least one profile/);
    expect(refusal(() => ProvisionerPolicy.create({ ...base, names: [] })).message).toMatch(/needs at least one name pattern/);
    expect(refusal(() => ProvisionerPolicy.create({ ...base, maxTtlSeconds: 1.5 })).message).toMatch(/maxTtlSeconds/);
    expect(refusal(() => ProvisionerPolicy.create({ ...base, name: "Bad Name" })).message).toMatch(/provisioner name 'Bad Name'/);
    expect(ProvisionerPolicy.create({ ...base, names: [" DNS:API.example.com "] }).names).toEqual(["DNS:API.example.com"]);
  });
});
