// The CA's URL scheme, in one place: what certificates point at and what the public
// routes serve must be the same paths.
import type { RevocationUrls } from "./tbs.ts";

export const OCSP_PATH = "/ocsp";
const crlPath = (issuerId: string, kind: "full" | "delta") => `/crl/${issuerId}${kind === "delta" ? "-delta" : ""}.crl`;
const caCertificatePath = (issuerId: string) => `/ca/${issuerId}.crt`;

/** URLs written into CA certificates and the responder's. */
export function revocationUrls(publicUrl: string, issuerId: string): RevocationUrls {
  return { crl: publicUrl + crlPath(issuerId, "full"), ocsp: publicUrl + OCSP_PATH, caIssuers: publicUrl + caCertificatePath(issuerId) };
}

/** Leaves also point at their issuer's delta CRL (Freshest CRL), published every minute or so. */
export function leafRevocationUrls(publicUrl: string, issuerId: string): RevocationUrls {
  return { ...revocationUrls(publicUrl, issuerId), deltaCrl: publicUrl + crlPath(issuerId, "delta") };
}

/** Where an issuer's CRLs are published. */
export function crlUrls(publicUrl: string, issuerId: string): { full: string; delta: string } {
  return { full: publicUrl + crlPath(issuerId, "full"), delta: publicUrl + crlPath(issuerId, "delta") };
}

/** The issuer and kind a `/crl/{file}` name asks for, or undefined when it is not a CRL name of ours. */
export function parseCrlFileName(file: string): { issuerId: string; kind: "full" | "delta" } | undefined {
  const match = /^([A-Za-z0-9._-]+?)(-delta)?\.crl$/.exec(file);
  return match ? { issuerId: match[1]!, kind: match[2] ? "delta" : "full" } : undefined;
}

/** The issuer and encoding a `/ca/{file}` name asks for. */
export function parseCaCertificateFileName(file: string): { issuerId: string; format: "der" | "pem" } | undefined {
  const match = /^([A-Za-z0-9._-]+)\.(crt|pem)$/.exec(file);
  return match ? { issuerId: match[1]!, format: match[2] === "pem" ? "pem" : "der" } : undefined;
}
