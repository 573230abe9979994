import { BlockList, isIP } from "node:net";
import type { DnsLookups } from "./resolve.ts";
import type { ChallengeSettings } from "./types.ts";

/**
 * Networks validation never connects to, whatever the operator adds: link-local (cloud
 * metadata services answer on 169.254.169.254 and fd00:ec2::254 and hand out credentials),
 * Alibaba's metadata address, and the unspecified addresses, which Linux connects to the
 * local host.
 */
export const ALWAYS_DENIED_NETWORKS = ["169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128", "0.0.0.0/8", "::/128"] as const;

const blockLists = new WeakMap<readonly string[], BlockList>();

/** `address/prefix` as BlockList wants it; undefined when it is not a network. */
export function parseNetwork(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefixText, rest] = text.trim().split("/");
  const version = isIP(address);
  if (!version || rest !== undefined || address.includes("%")) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

function blockListOf(extra: readonly string[]): BlockList {
  let list = blockLists.get(extra);
  if (!list) {
    list = new BlockList();
    for (const text of [...ALWAYS_DENIED_NETWORKS, ...extra]) {
      const network = parseNetwork(text);
      if (network) list.addSubnet(network.address, network.prefix, network.family);
    }
    blockLists.set(extra, list);
  }
  return list;
}

const NO_EXTRA: readonly string[] = [];

/** Whether validation may connect to this address (an IPv4-mapped IPv6 address is judged as its IPv4 one). */
export function addressAllowed(address: string, settings: Pick<ChallengeSettings, "deniedNetworks">): boolean {
  const list = blockListOf(settings.deniedNetworks ?? NO_EXTRA);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return !list.check(mapped, "ipv4") && !list.check(address, "ipv6");
  return !list.check(address, isIP(address) === 4 ? "ipv4" : "ipv6");
}

/** Every address of the host was in a denied network. */
export class DeniedAddresses extends Error {
  constructor(readonly host: string) {
    // The addresses are not named: for an internal name they would tell the requester how it resolves.
    super(`every address of ${host.slice(0, 253)} is in a network this CA does not connect to for validation`);
    this.name = "DeniedAddresses";
  }
}

/** The host's addresses that validation may connect to; DeniedAddresses when there is none. */
export async function connectableAddresses(host: string, lookups: DnsLookups, settings: Pick<ChallengeSettings, "deniedNetworks">): Promise<string[]> {
  const allowed = (await lookups.addresses(host)).filter((address) => addressAllowed(address, settings));
  if (allowed.length === 0) throw new DeniedAddresses(host);
  return allowed;
}
