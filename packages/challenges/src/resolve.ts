import { isIP } from "node:net";
import { Resolver } from "node:dns/promises";
import type { CaaRecord } from "node:dns";
import type { Deadline } from "./deadline.ts";
import type { ChallengeSettings } from "./types.ts";

/** The answer was authoritative that there is nothing (NXDOMAIN or no records of that type). */
const NOTHING_THERE = new Set(["ENOTFOUND", "ENODATA"]);

export function isNoRecords(error: unknown): boolean {
  return NOTHING_THERE.has((error as { code?: string } | undefined)?.code ?? "");
}

/**
 * Lookups through the configured DNS server (never /etc/hosts), each bounded by the
 * validation's deadline. A fresh Resolver per validation: c-ares keeps per-channel state,
 * and cancel() must not reach other validations' queries.
 */
export class DnsLookups {
  private readonly resolver: Resolver;

  constructor(
    settings: ChallengeSettings,
    private readonly deadline: Deadline,
  ) {
    this.resolver = new Resolver({ timeout: Math.max(1, Math.min(settings.timeoutMs, 5000)), tries: 2 });
    if (settings.resolver) this.resolver.setServers([settings.resolver]);
  }

  txt(name: string): Promise<string[][]> {
    return this.deadline.race(this.resolver.resolveTxt(name), () => this.resolver.cancel());
  }

  caa(name: string): Promise<CaaRecord[]> {
    return this.deadline.race(this.resolver.resolveCaa(name), () => this.resolver.cancel());
  }

  /**
   * The addresses to try, IPv6 first (as other ACME CAs do), at most one per family: a
   * target that does not answer on its first address of a family gets no more chances.
   */
  async addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const [v6, v4] = await Promise.allSettled([
      this.deadline.race(this.resolver.resolve6(host), () => this.resolver.cancel()),
      this.deadline.race(this.resolver.resolve4(host), () => this.resolver.cancel()),
    ]);
    const found = [v6, v4].flatMap((r) => (r.status === "fulfilled" && r.value.length ? [r.value[0] as string] : []));
    if (found.length) return found;
    // Report the failure that is not "nothing there" if there is one (SERVFAIL, timeout, ...).
    const failures = [v6, v4].flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    throw failures.find((e) => !isNoRecords(e)) ?? failures[0] ?? Object.assign(new Error("no A or AAAA records"), { code: "ENODATA" });
  }
}
