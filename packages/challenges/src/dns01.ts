import { createHash } from "node:crypto";
import { errorName, fail, OK, quote } from "./problems.ts";
import { type DnsLookups, isNoRecords } from "./resolve.ts";
import type { Identifier, ValidationResult } from "./types.ts";

/** RFC 8555 §8.4: the TXT name for a domain; a wildcard's is its base domain's. */
export function dns01RecordName(identifier: Identifier): string {
  return `_acme-challenge.${identifier.value.replace(/^\*\./, "").replace(/\.$/, "")}`;
}

export function dns01Digest(keyAuthorization: string): string {
  return createHash("sha256").update(keyAuthorization).digest("base64url");
}

export async function validateDns01(identifier: Identifier, keyAuthorization: string, lookups: DnsLookups): Promise<ValidationResult> {
  if (identifier.type !== "dns") return fail("malformed", "dns-01 validates DNS names only, not IP addresses");
  const name = dns01RecordName(identifier);
  let records: string[][];
  try {
    records = await lookups.txt(name);
  } catch (error) {
    if (isNoRecords(error)) return fail("unauthorized", `no TXT record at ${name}`);
    return fail("dns", `looking up TXT records at ${name} failed: ${errorName(error)}`);
  }
  const expected = dns01Digest(keyAuthorization);
  // A TXT record may be split in several strings of at most 255 bytes; they are one value.
  const values = records.map((strings) => strings.join(""));
  if (values.includes(expected)) return OK;
  if (!values.length) return fail("unauthorized", `no TXT record at ${name}`);
  return fail("incorrectResponse", `the ${values.length} TXT record(s) at ${name} (first ${quote(values[0] ?? "")}) do not hold the digest of the key authorization`);
}
