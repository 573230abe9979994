import { OID } from "./x509.ts";

/** Certificate profiles: the CA, not the CSR, decides what a certificate may be used for. */
export const PROFILES = {
  mtls: { description: "server and client authentication", extendedKeyUsages: [OID.serverAuth, OID.clientAuth] },
  server: { description: "TLS server authentication", extendedKeyUsages: [OID.serverAuth] },
  client: { description: "TLS client authentication", extendedKeyUsages: [OID.clientAuth] },
} as const;

export type ProfileName = keyof typeof PROFILES;
export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];
export const DEFAULT_PROFILE: ProfileName = "mtls";

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(PROFILES, name);
}
