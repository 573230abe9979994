// Certificate profiles: the CA, not the request, decides what a certificate may be used
// for. One row per profile; the encoders, the lint context and the issuance pipeline read
// these rows and nothing else, so a new profile is a new row (and a test).
import { KEY_ALGORITHMS, type KeyAlgorithm } from "./algorithms.ts";
import type { SanType } from "./names.ts";
import { OID } from "./oids.ts";

/** keyUsage bits (RFC 5280 §4.2.1.3), by name. */
export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

export interface Profile {
  description: string;
  /** end entity, or a CA with an optional path length constraint */
  basicConstraints: { ca: false } | { ca: true; pathLength?: number };
  keyUsage: readonly KeyUsageName[];
  /** added for RSA subject keys: TLS 1.2 servers may still use RSA key transport; EC keys only sign */
  rsaKeyUsage?: readonly KeyUsageName[];
  extendedKeyUsages: readonly string[];
  /** bounds on the lifetime, in seconds; the requester's and the CA's maxima cut further */
  lifetime: { minSeconds: number; maxSeconds?: number };
  /** subject key algorithms the profile accepts */
  keyAlgorithms: readonly KeyAlgorithm[];
  /** the subjectAltName kinds a certificate of this profile may carry */
  nameKinds: readonly SanType[];
  /** delegated OCSP responders carry id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1) */
  ocspNoCheck?: boolean;
}

/** The shortest lifetime the CA signs: less would expire before clients could use it. */
export const MIN_TTL_SECONDS = 60;

const SERVICE_NAMES: readonly SanType[] = ["DNS", "IP", "URI", "email"];
const leaf = (description: string, extendedKeyUsages: readonly string[], rsaKeyUsage: readonly KeyUsageName[] = []): Profile => ({
  description,
  basicConstraints: { ca: false },
  keyUsage: ["digitalSignature"],
  rsaKeyUsage: ["digitalSignature", ...rsaKeyUsage],
  extendedKeyUsages,
  lifetime: { minSeconds: MIN_TTL_SECONDS },
  keyAlgorithms: KEY_ALGORITHMS,
  nameKinds: SERVICE_NAMES,
});
const ca = (description: string, pathLength: number | undefined): Profile => ({
  description,
  basicConstraints: pathLength === undefined ? { ca: true } : { ca: true, pathLength },
  keyUsage: ["digitalSignature", "keyCertSign", "cRLSign"],
  extendedKeyUsages: [],
  lifetime: { minSeconds: 86_400 },
  keyAlgorithms: KEY_ALGORITHMS,
  nameKinds: [],
});

/** The profiles a requester may ask for. */
const REQUESTABLE_PROFILES = {
  mtls: leaf("server and client authentication", [OID.serverAuth, OID.clientAuth], ["keyEncipherment"]),
  server: leaf("TLS server authentication", [OID.serverAuth], ["keyEncipherment"]),
  client: leaf("TLS client authentication", [OID.clientAuth]),
} as const satisfies Record<string, Profile>;

export const PROFILES = {
  ...REQUESTABLE_PROFILES,
  // The CA's own certificates: never requested, issued by the CA's own processes.
  "ocsp-responder": {
    description: "delegated OCSP responder of one issuer",
    basicConstraints: { ca: false },
    keyUsage: ["digitalSignature"],
    extendedKeyUsages: [OID.ocspSigning],
    lifetime: { minSeconds: 3600, maxSeconds: 30 * 86_400 },
    keyAlgorithms: KEY_ALGORITHMS,
    // Lint wants every leaf named in its SAN; a responder's name is its URL.
    nameKinds: ["URI"],
    ocspNoCheck: true,
  },
  intermediate: ca("issuing intermediate CA", 0),
  root: ca("self-signed root CA", undefined),
} as const satisfies Record<string, Profile>;

export type CertificateProfileName = keyof typeof PROFILES;
export type ProfileName = keyof typeof REQUESTABLE_PROFILES;
export const PROFILE_NAMES = Object.keys(REQUESTABLE_PROFILES) as ProfileName[];
export const DEFAULT_PROFILE: ProfileName = "mtls";
export const OCSP_RESPONDER_PROFILE = "ocsp-responder" satisfies CertificateProfileName;

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(REQUESTABLE_PROFILES, name);
}

/** The key usages a certificate of `profile` gets for a subject key of `keyAlgorithm`. */
export function keyUsagesFor(profile: Profile, keyAlgorithm: KeyAlgorithm): readonly KeyUsageName[] {
  return keyAlgorithm.startsWith("RSA") && profile.rsaKeyUsage ? profile.rsaKeyUsage : profile.keyUsage;
}

/** The keyUsage BIT STRING's bytes and unused-bit count (DER: trailing zero bits dropped). */
export function keyUsageBits(usages: readonly KeyUsageName[]): { bytes: Buffer; unusedBits: number } {
  let value = 0;
  for (const usage of usages) value |= 0x8000 >> KEY_USAGE_BITS[usage];
  if (value === 0) return { bytes: Buffer.alloc(0), unusedBits: 0 };
  const length = value & 0xff ? 2 : 1;
  const bytes = Buffer.from([value >> 8, value & 0xff].slice(0, length));
  const last = bytes[length - 1]!;
  let unusedBits = 0;
  while (!(last & (1 << unusedBits))) unusedBits++;
  return { bytes, unusedBits };
}
