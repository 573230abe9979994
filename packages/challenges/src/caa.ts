import type { CaaRecord } from "node:dns";
import { errorName, fail, OK, quote } from "./problems.ts";
import { type DnsLookups, isNoRecords } from "./resolve.ts";
import type { ValidationResult } from "./types.ts";

/** Property tags this CA understands; a critical record with any other tag forbids issuance (RFC 8659 §4.1). */
const UNDERSTOOD_TAGS = new Set(["issue", "issuewild", "iodef", "issuemail", "issuevmc"]);
const CRITICAL_FLAG = 128;

/** The names whose CAA sets apply to a domain, from the domain itself up to its top-level domain. */
export function caaLookupNames(domain: string): string[] {
  const labels = domain.replace(/^\*\./, "").replace(/\.$/, "").toLowerCase().split(".").filter(Boolean);
  return labels.map((_, i) => labels.slice(i).join("."));
}

/**
 * RFC 8659 §3: the relevant CAA set is the first non-empty one climbing from the domain
 * to its top-level domain. The certificate may be issued when there is none, or when its
 * issue properties (issuewild first for wildcards, if there are any) name one of this CA's
 * identities. Property parameters (RFC 8657 accounturi, validationmethods) are not checked.
 */
export async function checkCaaRecords(domain: string, caIdentities: string[], lookups: DnsLookups, wildcard: boolean): Promise<ValidationResult> {
  const identities = new Set(caIdentities.map((i) => i.toLowerCase()));
  for (const name of caaLookupNames(domain)) {
    let records: CaaRecord[];
    try {
      records = await lookups.caa(name);
    } catch (error) {
      if (isNoRecords(error)) continue;
      // A lookup that failed is not an empty set: RFC 8659 §3 forbids issuing on it.
      return fail("dns", `looking up CAA records at ${name} failed: ${errorName(error)}`);
    }
    if (!records.length) continue;
    return judgeCaaSet(name, records, identities, wildcard);
  }
  return OK;
}

function judgeCaaSet(name: string, records: CaaRecord[], identities: Set<string>, wildcard: boolean): ValidationResult {
  for (const record of records) {
    const tag = tagOf(record);
    if ((record.critical & CRITICAL_FLAG) !== 0 && !UNDERSTOOD_TAGS.has(tag)) {
      return fail("caa", `the CAA record at ${name} has the critical property ${quote(tag)}, which this CA does not understand`);
    }
  }
  const issueWild = records.flatMap((r) => (r.issuewild !== undefined ? [r.issuewild] : []));
  const issue = records.flatMap((r) => (r.issue !== undefined ? [r.issue] : []));
  const applicable = wildcard && issueWild.length ? issueWild : issue;
  const property = wildcard && issueWild.length ? "issuewild" : "issue";
  if (!applicable.length) return OK;
  if (applicable.some((value) => identities.has(issuerOf(value)))) return OK;
  return fail("caa", `the CAA ${property} records at ${name} (${applicable.slice(0, 4).map(quote).join(", ")}) do not name this CA (${[...identities].join(", ")})`);
}

/** The issuer-domain-name of an issue value (RFC 8659 §4.2): what comes before the parameters, maybe empty. */
function issuerOf(value: string): string {
  return (value.split(";")[0] ?? "").trim().toLowerCase();
}

function tagOf(record: CaaRecord): string {
  return Object.keys(record).find((k) => k !== "critical") ?? "";
}
