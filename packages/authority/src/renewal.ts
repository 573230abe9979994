// What a renewal keeps from the certificate it replaces, decided in one place for every
// front end (mTLS renewal, the scheduler's auto-renewal, the re-issue after an emergency
// rotation): the names, the profile and the lifetime; the key unless a CSR brings a new one.
import type { CertificateRecord } from "@pki/db";
import { type CsrProposal, type ProfileName, MIN_TTL_SECONDS, formatSan, isProfileName, keyAlgorithmOfSpki, namesOf, parseSan } from "@pki/x509";
import { badRequest } from "./errors.ts";

/** The stored fields of a certificate that its renewal reads. */
export type Predecessor = Pick<CertificateRecord, "serial" | "profile" | "subject" | "sans" | "publicKeySpki" | "notBefore" | "notAfter" | "autoRenew" | "issuerId" | "provisionerId">;

/** The predecessor's profile, if this CA still issues it. */
export function successorProfile(predecessor: Predecessor): ProfileName {
  if (!isProfileName(predecessor.profile)) throw badRequest(`certificate ${predecessor.serial} has unknown profile '${predecessor.profile}', which this CA no longer issues`);
  return predecessor.profile;
}

function storedNames(predecessor: Predecessor): { commonName: string | undefined; sans: CsrProposal["sans"] } {
  return { commonName: predecessor.subject.startsWith("CN=") ? predecessor.subject.slice(3) : undefined, sans: predecessor.sans.map(parseSan) };
}

function namesKey(names: ReturnType<typeof namesOf>): string {
  return JSON.stringify({ cn: names.commonName ?? null, sans: names.sans.map(formatSan).sort() });
}

const showNames = (names: ReturnType<typeof namesOf>) => [names.commonName ? `CN=${names.commonName}` : undefined, ...names.sans.map(formatSan)].filter(Boolean).join(", ");

/**
 * What the successor is built from. Without a CSR, the stored key and names; the key's
 * algorithm is read from the key itself (not from the stored label), so a key this CA no
 * longer accepts is refused by name. With a CSR (a new key), its names must be exactly the
 * stored ones: new names need an enrolment, not a renewal.
 */
export function successorProposal(predecessor: Predecessor, csr?: CsrProposal): CsrProposal {
  const names = storedNames(predecessor);
  if (csr) {
    const wanted = namesOf(csr);
    const have = namesOf({ ...csr, ...names });
    if (namesKey(wanted) !== namesKey(have)) {
      throw badRequest(`a renewal keeps the names of certificate ${predecessor.serial} (${showNames(have)}); the CSR asks for ${showNames(wanted)}. Enrol with a provisioner token for new names`);
    }
    return csr;
  }
  const keyAlgorithm = keyAlgorithmOfSpki(predecessor.publicKeySpki);
  if (typeof keyAlgorithm !== "string") throw badRequest(`certificate ${predecessor.serial} has a key this CA no longer accepts (${keyAlgorithm.unsupported}); renew with a CSR for a new key`);
  return { publicKeySpki: predecessor.publicKeySpki, keyAlgorithm, ...names };
}

/**
 * The lifetime the successor asks for: the predecessor's, without the backdating (policy
 * clips it again), and never below the CA's minimum lifetime, which every issuance has.
 */
export function successorLifetimeSeconds(predecessor: Predecessor, backdateSeconds: number): number {
  const seconds = Math.round((predecessor.notAfter.getTime() - predecessor.notBefore.getTime()) / 1000) - backdateSeconds;
  return Math.max(seconds, MIN_TTL_SECONDS);
}
