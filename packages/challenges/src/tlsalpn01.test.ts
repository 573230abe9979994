import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import { createServer as createHttpsServer } from "node:https";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ACME_TLS_ALPN, type ChallengeSettings, ID_PE_ACME_IDENTIFIER, validateChallenge } from "./index.ts";
import { CHALLENGE_PATH, ChallengeHttpServer, KEY_AUTHORIZATION, listen, settingsFor, TestDnsServer, TOKEN } from "./test-fixtures.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

interface AcmeCertOptions {
  names: x509.JsonGeneralName[];
  digest?: Buffer;
  critical?: boolean;
  /** raw extnValue instead of OCTET STRING(digest) */
  rawValue?: Buffer;
  omitExtension?: boolean;
}

/** A self-signed acme-tls/1 certificate (RFC 8737 §3), with the faults the tests need. */
async function acmeCertificate(options: AcmeCertOptions): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const digest = options.digest ?? createHash("sha256").update(KEY_AUTHORIZATION).digest();
  const value = options.rawValue ?? Buffer.concat([Buffer.from([0x04, digest.length]), digest]);
  const extensions: x509.Extension[] = [new x509.SubjectAlternativeNameExtension(options.names)];
  if (!options.omitExtension) extensions.push(new x509.Extension(ID_PE_ACME_IDENTIFIER, options.critical ?? true, new Uint8Array(value)));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=acme-tls-alpn-01",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)).toString("base64");
  return { cert: cert.toString("pem"), key: `-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----\n` };
}

let dns: TestDnsServer;
let server: tls.Server;
let port: number;
let settings: ChallengeSettings;
let presented: { cert: string; key: string };
/** What clients offered, recorded during the handshake (before the client can see its outcome). */
const handshakes: { servername: string | undefined; alpn: string[] }[] = [];

const tlsAlpn01 = (value: string, type: "dns" | "ip" = "dns", overrides: Partial<ChallengeSettings> = {}) =>
  validateChallenge({ type: "tls-alpn-01", identifier: { type, value }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION }, { ...settings, ...overrides });

beforeAll(async () => {
  dns = await TestDnsServer.start();
  server = tls.createServer({
    ALPNCallback: ({ servername, protocols }) => {
      handshakes.push({ servername, alpn: protocols });
      return protocols.includes(ACME_TLS_ALPN) ? ACME_TLS_ALPN : undefined;
    },
    SNICallback: (_name, done) => done(null, tls.createSecureContext(presented)),
  });
  server.on("secureConnection", (socket) => socket.end());
  server.on("tlsClientError", () => {});
  port = await listen(server);
  settings = settingsFor(dns, { http01Port: 1, tlsAlpn01Port: port });
});
afterAll(async () => {
  await dns.close();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  dns.clear();
  handshakes.length = 0;
  dns.add("site.test", { type: "A", data: "127.0.0.1" });
});

describe("tls-alpn-01", () => {
  it("accepts a certificate naming the identifier with the critical acmeIdentifier digest, sent with ALPN acme-tls/1 and SNI", async () => {
    presented = await acmeCertificate({ names: [{ type: "dns", value: "site.test" }] });
    expect(await tlsAlpn01("site.test")).toEqual({ ok: true });
    expect(handshakes).toEqual([{ servername: "site.test", alpn: [ACME_TLS_ALPN] }]);
  });

  it("validates an IP identifier with its reverse name as SNI (RFC 8738 §6) and an IP SAN", async () => {
    presented = await acmeCertificate({ names: [{ type: "ip", value: "127.0.0.1" }] });
    expect(await tlsAlpn01("127.0.0.1", "ip")).toEqual({ ok: true });
    expect(handshakes[0]?.servername).toBe("1.0.0.127.in-addr.arpa");
    expect(dns.queries).toEqual([]);
  });

  it.each<[string, AcmeCertOptions, string]>([
    ["the digest of another key authorization", { names: [{ type: "dns", value: "site.test" }], digest: createHash("sha256").update("other").digest() }, "not the SHA-256"],
    ["a non-critical acmeIdentifier", { names: [{ type: "dns", value: "site.test" }], critical: false }, "not marked critical"],
    ["no acmeIdentifier", { names: [{ type: "dns", value: "site.test" }], omitExtension: true }, "0 acmeIdentifier extensions"],
    ["an acmeIdentifier that is not an OCTET STRING", { names: [{ type: "dns", value: "site.test" }], rawValue: Buffer.from([0x05, 0x00]) }, "not a 32-byte OCTET STRING"],
    [
      "two SANs",
      {
        names: [
          { type: "dns", value: "site.test" },
          { type: "dns", value: "extra.test" },
        ],
      },
      "names 2 subjectAltNames",
    ],
    ["another name", { names: [{ type: "dns", value: "elsewhere.test" }] }, "names DNS:elsewhere.test, not DNS:site.test"],
    ["an IP instead of the name", { names: [{ type: "ip", value: "127.0.0.1" }] }, "names IP:127.0.0.1"],
  ])("refuses a certificate with %s", async (_name, options, reason) => {
    presented = await acmeCertificate(options);
    expect(await tlsAlpn01("site.test")).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:incorrectResponse", detail: expect.stringContaining(reason) },
    });
  });

  it("refuses a server that does not negotiate acme-tls/1", async () => {
    presented = await acmeCertificate({ names: [{ type: "dns", value: "site.test" }] });
    const plain = tls.createServer(presented, (socket) => socket.end());
    const plainPort = await listen(plain);
    try {
      expect(await tlsAlpn01("site.test", "dns", { tlsAlpn01Port: plainPort })).toMatchObject({
        ok: false,
        problem: { type: "urn:ietf:params:acme:error:tls", detail: expect.stringContaining(`did not negotiate ALPN ${ACME_TLS_ALPN}`) },
      });
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it("reports a refused connection and a missing name", async () => {
    expect(await tlsAlpn01("site.test", "dns", { tlsAlpn01Port: 1 })).toMatchObject({
      ok: false,
      problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("ECONNREFUSED") },
    });
    expect(await tlsAlpn01("nowhere.test")).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:dns" } });
  });

  it("gives up on a server that accepts TCP and never completes the handshake", async () => {
    const { createServer } = await import("node:net");
    const silent = createServer(() => {});
    const silentPort = await listen(silent);
    try {
      expect(await tlsAlpn01("127.0.0.1", "ip", { tlsAlpn01Port: silentPort, timeoutMs: 300 })).toMatchObject({
        ok: false,
        problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("timed out after 300 ms") },
      });
    } finally {
      silent.close();
    }
  });
});

describe("tls-alpn-01 denied networks", () => {
  it("never connects to a link-local (metadata) address or a network the operator denies", async () => {
    const result = await tlsAlpn01("169.254.169.254", "ip");
    expect(result).toMatchObject({ ok: false, problem: { type: "urn:ietf:params:acme:error:connection", detail: expect.stringContaining("does not connect to") } });
    expect(await tlsAlpn01("127.0.0.1", "ip", { deniedNetworks: ["127.0.0.1/32"] })).toMatchObject({ ok: false, problem: { detail: expect.stringContaining("does not connect to") } });
  });
});

describe("http-01 redirected to https", () => {
  it("follows a redirect to https on the TLS validation port without checking the certificate chain", async () => {
    const http = await ChallengeHttpServer.start();
    const self = await acmeCertificate({ names: [{ type: "dns", value: "site.test" }] });
    const https = createHttpsServer(self, (request, response) => response.writeHead(200).end(request.headers.host === `site.test:${httpsPort}` ? KEY_AUTHORIZATION : "wrong host"));
    const httpsPort = await listen(https);
    try {
      http.handlers.set(CHALLENGE_PATH, (_request, response) => response.writeHead(302, { location: `https://site.test:${httpsPort}${CHALLENGE_PATH}` }).end());
      const result = await validateChallenge(
        { type: "http-01", identifier: { type: "dns", value: "site.test" }, token: TOKEN, keyAuthorization: KEY_AUTHORIZATION },
        { ...settings, http01Port: http.port, tlsAlpn01Port: httpsPort },
      );
      expect(result).toEqual({ ok: true });
    } finally {
      await http.close();
      await new Promise((resolve) => https.close(resolve));
    }
  });
});
