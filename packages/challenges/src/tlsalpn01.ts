import { createHash } from "node:crypto";
import tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, id_ce_subjectAltName, SubjectAlternativeName } from "@peculiar/asn1-x509";
import type { Deadline } from "./deadline.ts";
import { ipBytes, reverseName } from "./ip.ts";
import { connectableAddresses, DeniedAddresses } from "./networks.ts";
import { errorName, fail, OK } from "./problems.ts";
import type { DnsLookups } from "./resolve.ts";
import type { ChallengeSettings, Identifier, ValidationResult } from "./types.ts";

export const ACME_TLS_ALPN = "acme-tls/1";
/** RFC 8737 §6.1 id-pe-acmeIdentifier */
export const ID_PE_ACME_IDENTIFIER = "1.3.6.1.5.5.7.1.31";

/**
 * RFC 8737: a TLS handshake with ALPN acme-tls/1 and SNI naming the identifier (its
 * reverse-mapping name for IP identifiers, RFC 8738 §6); the certificate is not checked
 * against any trust store, only for the one SAN and the critical acmeIdentifier extension.
 */
export async function validateTlsAlpn01(identifier: Identifier, keyAuthorization: string, settings: ChallengeSettings, lookups: DnsLookups, deadline: Deadline): Promise<ValidationResult> {
  const target = `${identifier.value}:${settings.tlsAlpn01Port}`;
  let addresses: string[];
  try {
    addresses = await connectableAddresses(identifier.value, lookups, settings);
  } catch (error) {
    if (error instanceof DeniedAddresses) return fail("connection", error.message);
    return fail("dns", `looking up A/AAAA records for ${identifier.value} failed: ${errorName(error)}`);
  }
  const servername = identifier.type === "ip" ? reverseName(identifier.value) : identifier.value;
  let handshake: { alpn: string | false; der: Buffer | undefined } | undefined;
  let lastError: unknown;
  for (const address of addresses) {
    try {
      handshake = await deadline.race(handshakeWith(address, settings.tlsAlpn01Port, servername, deadline));
      break;
    } catch (error) {
      lastError = error;
      if (deadline.expired) break;
    }
  }
  if (!handshake) {
    const error = deadline.expired ? deadline.signal.reason : lastError;
    const code = errorName(error);
    // Refused or unreachable is a connection problem; a handshake that went wrong is a TLS one.
    const type = deadline.expired || /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT)$/.test(code) ? "connection" : "tls";
    return fail(type, `TLS connection to ${target} (ALPN ${ACME_TLS_ALPN}, SNI ${servername}) failed: ${code}`);
  }
  if (handshake.alpn !== ACME_TLS_ALPN) return fail("tls", `${target} did not negotiate ALPN ${ACME_TLS_ALPN}`);
  if (!handshake.der) return fail("tls", `${target} presented no certificate`);
  const problem = checkAcmeCertificate(handshake.der, identifier, keyAuthorization);
  return problem ? fail("incorrectResponse", `the certificate ${target} presented ${problem}`) : OK;
}

function handshakeWith(address: string, port: number, servername: string, deadline: Deadline): Promise<{ alpn: string | false; der: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: address, port, servername, ALPNProtocols: [ACME_TLS_ALPN], rejectUnauthorized: false });
    const stop = () => socket.destroy();
    deadline.signal.addEventListener("abort", stop, { once: true });
    socket.once("secureConnect", () => {
      const der = socket.getPeerCertificate(false)?.raw;
      const alpn = socket.alpnProtocol ?? false;
      socket.end();
      deadline.signal.removeEventListener("abort", stop);
      resolve({ alpn, der: der?.length ? der : undefined });
    });
    socket.once("error", (error) => {
      deadline.signal.removeEventListener("abort", stop);
      reject(error);
    });
    socket.once("close", () => reject(new Error("the connection closed during the handshake")));
  });
}

/** Why the certificate does not prove control of the identifier, or undefined when it does. */
export function checkAcmeCertificate(der: Buffer, identifier: Identifier, keyAuthorization: string): string | undefined {
  let certificate: Certificate;
  try {
    certificate = AsnConvert.parse(der, Certificate);
  } catch {
    return "is not a parseable X.509 certificate";
  }
  const extensions = certificate.tbsCertificate.extensions ?? [];
  const sans = extensions.filter((e) => e.extnID === id_ce_subjectAltName);
  if (sans.length !== 1 || !sans[0]) return "has no subjectAltName extension (or more than one)";
  let names: SubjectAlternativeName;
  try {
    names = AsnConvert.parse(sans[0].extnValue, SubjectAlternativeName);
  } catch {
    return "has an unparseable subjectAltName extension";
  }
  if (names.length !== 1 || !names[0]) return `names ${names.length} subjectAltNames, not exactly the one identifier`;
  const name = names[0];
  if (identifier.type === "dns") {
    if (name.dNSName?.toLowerCase() !== identifier.value.toLowerCase()) return `names ${describeName(name)}, not DNS:${identifier.value}`;
  } else if (name.iPAddress === undefined || !sameIp(name.iPAddress, identifier.value)) {
    return `names ${describeName(name)}, not IP:${identifier.value}`;
  }
  const acme = extensions.filter((e) => e.extnID === ID_PE_ACME_IDENTIFIER);
  if (acme.length !== 1 || !acme[0]) return `has ${acme.length} acmeIdentifier extensions, not exactly one`;
  if (!acme[0].critical) return "has an acmeIdentifier extension that is not marked critical";
  // extnValue holds the DER of OCTET STRING (SIZE (32)): tag 04, length 32, the digest.
  const value = Buffer.from(acme[0].extnValue.buffer);
  const expected = createHash("sha256").update(keyAuthorization).digest();
  if (value.length !== 34 || value[0] !== 0x04 || value[1] !== 0x20) return "has an acmeIdentifier extension that is not a 32-byte OCTET STRING";
  if (!value.subarray(2).equals(expected)) return "has an acmeIdentifier extension that is not the SHA-256 of the key authorization";
  return undefined;
}

function sameIp(a: string, b: string): boolean {
  try {
    return ipBytes(a).equals(ipBytes(b));
  } catch {
    return false;
  }
}

function describeName(name: SubjectAlternativeName[number]): string {
  if (name.dNSName !== undefined) return `DNS:${name.dNSName.slice(0, 100)}`;
  if (name.iPAddress !== undefined) return `IP:${name.iPAddress}`;
  return "a name that is neither a DNS name nor an IP address";
}
