// REPLACE WITH @pki/challenges once it lands on main: a minimal stand-in with the same
// signature as its validateChallenge, covering http-01 (no redirects followed) and
// tls-alpn-01. dns-01 and CAA are refused/skipped here; the real package does them.
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import { request } from "node:http";
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import { connect } from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";

export type ChallengeType = "http-01" | "dns-01" | "tls-alpn-01";
export interface ChallengeSettings {
  resolver?: string;
  http01Port: number;
  tlsAlpn01Port: number;
  timeoutMs: number;
  maxResponseBytes: number;
}
export type ChallengeOutcome = { ok: true } | { ok: false; problem: { type: string; detail: string } };
export interface ChallengeInput {
  type: ChallengeType;
  identifier: { type: "dns" | "ip"; value: string };
  token: string;
  keyAuthorization: string;
}

const E = "urn:ietf:params:acme:error:";
const fail = (type: string, detail: string): ChallengeOutcome => ({ ok: false, problem: { type: E + type, detail } });

/** The address to connect to: an IP identifier itself, else A (then AAAA) through the configured resolver or the system's. */
async function addressOf(identifier: ChallengeInput["identifier"], settings: ChallengeSettings): Promise<string> {
  if (identifier.type === "ip") return identifier.value;
  if (!settings.resolver) return (await dns.lookup(identifier.value)).address;
  const resolver = new dns.Resolver({ timeout: settings.timeoutMs, tries: 2 });
  resolver.setServers([settings.resolver]);
  const v4 = await resolver.resolve4(identifier.value).catch(() => [] as string[]);
  const address = v4[0] ?? (await resolver.resolve6(identifier.value).catch(() => [] as string[]))[0];
  if (!address) throw new Error(`${identifier.value} has no A or AAAA record`);
  return address;
}

async function http01(input: ChallengeInput, settings: ChallengeSettings): Promise<ChallengeOutcome> {
  const host = input.identifier.value;
  const hostForUrl = isIP(host) === 6 ? `[${host}]` : host;
  const url = `http://${hostForUrl}:${settings.http01Port}/.well-known/acme-challenge/${input.token}`;
  let address: string;
  try {
    address = await addressOf(input.identifier, settings);
  } catch (error) {
    return fail("dns", `could not resolve ${host}: ${(error as Error).message}`);
  }
  const target = `http://${isIP(address) === 6 ? `[${address}]` : address}:${settings.http01Port}/.well-known/acme-challenge/${input.token}`;
  return new Promise((resolve) => {
    const req = request(target, { timeout: settings.timeoutMs, headers: { host: hostForUrl, "user-agent": "pki-acme-validator" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(fail("unauthorized", `${url} answered HTTP ${res.statusCode}, not 200 with the key authorization`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > settings.maxResponseBytes) {
          req.destroy();
          resolve(fail("unauthorized", `${url} answered more than ${settings.maxResponseBytes} bytes`));
        } else chunks.push(chunk);
      });
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8").trim();
        resolve(body === input.keyAuthorization ? { ok: true } : fail("incorrectResponse", `${url} answered '${body.slice(0, 80)}', not the expected key authorization`));
      });
      res.on("error", (error) => resolve(fail("connection", `${url}: ${error.message}`)));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${settings.timeoutMs} ms`)));
    req.on("error", (error) => resolve(fail("connection", `could not fetch ${url}: ${error.message}`)));
    req.end();
  });
}

const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";

async function tlsAlpn01(input: ChallengeInput, settings: ChallengeSettings): Promise<ChallengeOutcome> {
  const host = input.identifier.value;
  const where = `${host}:${settings.tlsAlpn01Port}`;
  // RFC 8738 §6: an IP identifier's SNI is its reverse-DNS name.
  const servername = isIP(host) ? undefined : host;
  let address: string;
  try {
    address = await addressOf(input.identifier, settings);
  } catch (error) {
    return fail("dns", `could not resolve ${host}: ${(error as Error).message}`);
  }
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: settings.tlsAlpn01Port, servername, ALPNProtocols: ["acme-tls/1"], rejectUnauthorized: false, timeout: settings.timeoutMs }, () => {
      try {
        if (socket.alpnProtocol !== "acme-tls/1") return resolve(fail("tls", `${where} did not negotiate the acme-tls/1 protocol`));
        const raw = socket.getPeerCertificate(false).raw;
        const cert = AsnConvert.parse(raw, Certificate);
        const sans = new NodeX509(raw).subjectAltName ?? "";
        const wanted = input.identifier.type === "ip" ? `IP Address:${host}` : `DNS:${host}`;
        if (sans.split(", ").length !== 1 || sans !== wanted) return resolve(fail("unauthorized", `${where} presented a certificate for ${sans || "no names"}, not exactly ${wanted}`));
        const extension = cert.tbsCertificate.extensions?.find((e) => e.extnID === ACME_IDENTIFIER_OID);
        if (!extension?.critical) return resolve(fail("unauthorized", `${where} presented a certificate without the critical acmeIdentifier extension`));
        const digest = createHash("sha256").update(input.keyAuthorization).digest();
        const expected = Buffer.concat([Buffer.from([0x04, 0x20]), digest]);
        resolve(
          Buffer.from(extension.extnValue.buffer).equals(expected)
            ? { ok: true }
            : fail("incorrectResponse", `${where}: the acmeIdentifier extension does not hold the SHA-256 of the key authorization`),
        );
      } catch (error) {
        resolve(fail("tls", `${where}: ${(error as Error).message}`));
      } finally {
        socket.destroy();
      }
    });
    socket.on("timeout", () => socket.destroy(new Error(`no handshake within ${settings.timeoutMs} ms`)));
    socket.on("error", (error) => resolve(fail("connection", `could not connect to ${where}: ${error.message}`)));
  });
}

export async function validateChallenge(input: ChallengeInput, settings: ChallengeSettings): Promise<ChallengeOutcome> {
  if (input.type === "http-01") return http01(input, settings);
  if (input.type === "tls-alpn-01") return tlsAlpn01(input, settings);
  return fail("serverInternal", "dns-01 validation is not available in this build");
}

export async function checkCaa(_domain: string, _caIdentities: string[], _settings: ChallengeSettings, _opts: { wildcard: boolean }): Promise<ChallengeOutcome> {
  return { ok: true };
}
