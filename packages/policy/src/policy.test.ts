import { describe, expect, it } from "vitest";
import { CaError, parseSan, sanProblem } from "@pki/x509";
import { ProvisionerPolicy, compileNamePattern } from "./index.ts";

const payments = ProvisionerPolicy.create({
  name: "payments",
  profiles: ["mtls", "client"],
  names: [
    "DNS:api.payments.example",
    "DNS:*.svc.payments.example",
    "DNS:.internal.example",
    "IP:10.20.0.0/16",
    "IP:fd00:20::/32",
    "URI:spiffe://prod.example/ns/payments/*",
    "email:@payments.example",
    "CN:batch-*",
  ],
  maxTtlSeconds: 3600,
});

const check =
  (...sans: string[]) =>
  () =>
    payments.authorizeNames({ commonName: undefined, sans: sans.map(parseSan) });

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
    expect(refusal(() => payments.authorizeNames({ commonName: "root of all payments", sans })).message).toMatch(
      /^CN 'root of all payments' is not allowed for provisioner 'payments': a CN granted by a CN: pattern may hold only/,
    );
    expect(refusal(() => payments.authorizeNames({ commonName: "batch-", sans })).kind).toBe("forbidden");
  });

  // Dot segments and other spellings of a path are refused before policy sees them (CSR
  // intake runs sanProblem); the pattern also refuses them itself, for names re-read at renewal.
  it.each([
    "spiffe://prod.example/ns/payments/../admin/sa/x",
    "spiffe://prod.example/ns/payments/./sa/x",
    "spiffe://prod.example/ns/payments/%2e%2e/admin/sa/x",
    "spiffe://prod.example/ns/payments/%2E%2E/admin",
    "spiffe://prod.example/ns/payments/sa/x/..",
    "spiffe://prod.example/ns/payments//x",
    "spiffe://prod.example/ns/payments/x/",
  ])("a URI under the prefix only by spelling is neither valid nor allowed: %s", (uri) => {
    const san = parseSan(`URI:${uri}`);
    expect(sanProblem(san)).toMatch(/not a valid SPIFFE ID/);
    expect(refusal(check(`URI:${uri}`)).kind).toBe("forbidden");
  });

  it("matches a URI prefix on RFC 3986 normal form", () => {
    const web = ProvisionerPolicy.create({ name: "web", profiles: ["mtls"], names: ["URI:https://id.example/ns/a/*"], maxTtlSeconds: 3600 });
    const allowed = (uri: string) => () => web.authorizeNames({ commonName: undefined, sans: [parseSan(`URI:${uri}`)] });
    expect(allowed("https://id.example/ns/a/b/c;v=1")).not.toThrow();
    for (const uri of ["https://id.example/ns/a/../b", "https://id.example/ns/a/%2e%2e/b", "https://id.example/ns/a/%2E%2E/b", "https://id.example/ns/a/%7euser"]) {
      expect(sanProblem(parseSan(`URI:${uri}`)), uri).toBeDefined();
      expect(refusal(allowed(uri)).kind).toBe("forbidden");
    }
  });

  it.each([
    ["https://id.example/ns/a/..;/admin", "a dot segment with a path parameter (Tomcat reads it as ..)"],
    ["https://id.example/ns/a/.;/x", "a dot segment with a path parameter"],
    ["https://id.example/ns/a/b%2F..%2F..%2Fadmin", "an encoded '/'"],
    ["https://id.example/ns/a/b%5C..%5Cadmin", "an encoded '\\'"],
    ["https://id.example/ns/a/x%00", "an encoded NUL"],
    ["https://id.example/ns/a//x", "an empty segment"],
    ["https://id.example/ns/a/x#/../admin", "a fragment"],
  ])("a valid URI that servers could resolve outside the prefix is not under it: %s (%s)", (uri) => {
    const web = ProvisionerPolicy.create({ name: "web", profiles: ["mtls"], names: ["URI:https://id.example/ns/a/*"], maxTtlSeconds: 3600 });
    expect(refusal(() => web.authorizeNames({ commonName: undefined, sans: [parseSan(`URI:${uri}`)] })).kind).toBe("forbidden");
  });

  it("refuses a prefix pattern that is itself ambiguous", () => {
    for (const pattern of ["URI:https://x.example/a%2F..%2F/*", "URI:https://x.example/a//*", "URI:https://x.example/..;/*"]) {
      expect(() => ProvisionerPolicy.create({ name: "x", profiles: ["mtls"], names: [pattern], maxTtlSeconds: 3600 }), pattern).toThrow(/not usable/);
    }
  });

  it.each([
    ["batch-x.evil.com.", "a trailing dot"],
    ["batch-x.evil.com", "a host name"],
    ["batch-x ", "a trailing space"],
    ["batch-x\u3002evil\u3002com", "ideographic full stops"],
    ["batch-x\uff0eevil\uff0ecom", "fullwidth full stops"],
    ["batch-x\uff61evil", "halfwidth ideographic full stop"],
    ["batch-ｘ", "a fullwidth letter"],
  ])("refuses a CN that a CN: pattern would match only textually: %j (%s)", (cn) => {
    const r = refusal(() => payments.authorizeNames({ commonName: cn, sans: [] }));
    expect(r.kind).toBe("forbidden");
    expect(r.message).toContain("may hold only 1 to 64 ASCII letters, digits, '-' and '_'");
  });

  it.each(["2130706433", "0x7f000001", "0177", "127"])("refuses a CN: pattern CN that reads as an IPv4 address: %s", (cn) => {
    const numbers = ProvisionerPolicy.create({ name: "n", profiles: ["client"], names: ["CN:*"], maxTtlSeconds: 3600 });
    expect(refusal(() => numbers.authorizeNames({ commonName: cn, sans: [] })).message).toMatch(/may not be a number/);
    expect(() => numbers.authorizeNames({ commonName: "batch_7", sans: [] })).not.toThrow();
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
    ["URI:spiffe://prod.example/ns/../admin/*", /'\.' or '\.\.' path segment/],
    ["URI:spiffe://prod.example/ns/%2E%2E/*", /percent-encodes '\.'/],
    ["URI:spiffe://prod.example/ns/%2e%2e/*", /lower-case percent-encoding/],
    ["URI:spiffe://Prod.example/ns/*", /not a valid SPIFFE ID/],
    ["URI:spiffe://prod.example/ns//*", /ends in '\/' \(not a valid SPIFFE ID\)/],
    ["URI:spiffe://prod.example/ns//a/*", /empty path segment/],
    ["URI:https://id.example/a b/*", /may not hold/],
    ["URI:https://id.example/caf\u00e9/*", /outside ASCII/],
    ["URI:https://id.example/a\\b/*", /may not hold/],
    ["URI:https://id.example/a/?x=/*", /query or fragment/],
    ["URI:https://localhost/a/*", /not a fully qualified domain name/],
    ["email:ops\u00e9@example.com", /not an e-mail address/],
    ["email:<ops>@example.com", /not an e-mail address/],
    ["email:@exämple.com", /outside ASCII|invalid label/],
    ["CN:batch.runner", /letters, digits, '-' and '_'/],
    ["CN:batch\u3002*", /letters, digits, '-' and '_'/],
    ["CN:batch *", /letters, digits, '-' and '_'/],
    ["CN:12345", /may not be a number/],
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
