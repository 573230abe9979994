// Client-certificate authentication. The listener asks for a certificate but does not let
// OpenSSL decide: OpenSSL would check the certificate against the system clock and would
// refuse a server-profile certificate as a client, and it cannot know revocation. Here
// the certificate must be signed by one of this CA's intermediates (active or retired, not revoked),
// be within its validity by the CA's clock, and be a valid (not revoked) row in the
// inventory holding exactly these bytes. The TLS handshake has already proved the client
// holds the private key (CertificateVerify). It must also be meant for TLS clients: its
// extended key usage must name clientAuth. A certificate without that extension is refused
// too (RFC 5280 would let it serve any purpose), since every leaf profile of this CA sets
// one; so a server-only certificate can neither call the API nor renew itself over mTLS.
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import "reflect-metadata";
import { ExtendedKeyUsageExtension, X509Certificate as ParsedCertificate } from "@peculiar/x509";
import { CaError, OID } from "@pki/x509";
import { REASON_NAMES, inventoryFailure, type CaRuntime } from "@pki/authority";
import type { CertificateRecord } from "@pki/db";

export interface ClientCertificate {
  serial: string;
  record: CertificateRecord;
}

const unauthorized = (message: string) => new CaError("unauthorized", message);

/** The serial as the inventory keys it: lowercase hex of the DER INTEGER contents. */
const serialOf = (parsed: ParsedCertificate): string => parsed.serialNumber.toLowerCase();

/** Why the certificate may not authenticate a TLS client, or undefined when it may. */
function notForClients(parsed: ParsedCertificate): string | undefined {
  const eku = parsed.getExtension(ExtendedKeyUsageExtension);
  if (!eku) return "has no extended key usage, so it does not say it is meant for TLS clients";
  const usages = eku.usages.map(String);
  if (usages.includes(OID.clientAuth)) return undefined;
  return `is not for TLS clients (extended key usage ${usages.join(", ") || "empty"} lacks clientAuth ${OID.clientAuth}): use one from the mtls or client profile; a server-only certificate is enrolled again with a provisioner token or through ACME`;
}

/** Issuer certificates, parsed once per issuer. */
const issuerCache = new WeakMap<object, X509Certificate>();
function issuerX509(issuer: { facts: { der: Buffer } }): X509Certificate {
  let x = issuerCache.get(issuer);
  if (!x) issuerCache.set(issuer, (x = new X509Certificate(issuer.facts.der)));
  return x;
}

export async function verifyClientCertificate(socket: TLSSocket, runtime: CaRuntime): Promise<ClientCertificate> {
  const peer = typeof socket.getPeerX509Certificate === "function" ? socket.getPeerX509Certificate() : undefined;
  if (!peer) throw unauthorized("this route needs a client certificate issued by this CA, presented in the TLS handshake (curl --cert/--key)");
  const subject = (peer.subject ?? "").replaceAll("\n", ", ") || peer.subjectAltName || "(empty subject)";
  const issuer = runtime.keyring.all().find((i) => peer.checkIssued(issuerX509(i)) && peer.verify(issuerX509(i).publicKey));
  if (!issuer) throw unauthorized(`the client certificate '${subject}' (issuer '${(peer.issuer ?? "").replaceAll("\n", ", ")}') was not issued by any of this CA's intermediates`);

  // The keyring may hold an issuer record from before an emergency revocation: ask the inventory.
  const issuerRow = await runtime.inventory.issuers.get(issuer.record.id).catch((error: unknown) => {
    throw inventoryFailure(error, "cannot check the client certificate");
  });
  if (issuerRow?.revokedAt) {
    throw unauthorized(
      `the intermediate ${issuer.record.id} that issued the client certificate '${subject}' was revoked at ${issuerRow.revokedAt.toISOString()}; its certificates are re-issued by the operator (pki issuers revoke --reissue) or enrol again`,
    );
  }

  const now = runtime.clock.now();
  if (new Date(peer.validFrom) > now) throw unauthorized(`the client certificate '${subject}' is not valid until ${new Date(peer.validFrom).toISOString()} (check the clocks)`);
  if (new Date(peer.validTo) <= now) throw unauthorized(`the client certificate '${subject}' expired at ${new Date(peer.validTo).toISOString()}; enrol again with a provisioner token`);

  const parsed = new ParsedCertificate(new Uint8Array(peer.raw));
  const serial = serialOf(parsed);
  const unfit = notForClients(parsed);
  if (unfit) throw unauthorized(`the client certificate ${serial} ${unfit}`);
  const record = await runtime.inventory.certificates.get(serial).catch((error: unknown) => {
    throw inventoryFailure(error, "cannot check the client certificate");
  });
  if (!record?.der?.equals(peer.raw)) throw unauthorized(`the client certificate ${serial} is not in this CA's inventory`);
  if (record.status === "revoked") {
    throw unauthorized(`the client certificate ${serial} was revoked at ${record.revokedAt?.toISOString()} (${REASON_NAMES[record.revocationReason ?? 0]}); enrol again with a provisioner token`);
  }
  if (record.status !== "valid") throw unauthorized(`the client certificate ${serial} is ${record.status} in the inventory`);
  return { serial, record };
}
