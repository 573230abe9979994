// The root's CRL lists revoked intermediates and is signed by the root key, which lives on
// its own token and is used only in ceremonies. So it is long-lived (PKI_ROOT_CRL_DAYS),
// signed at init and by `pki crl sign-root`, and stored in crl_state like every other
// CRL: the serving processes publish it without ever holding the root PIN.
import type { Config } from "@pki/config";
import type { CrlMeta, Inventory, IssuerRecord, RevokedEntry } from "@pki/db";
import type { Token } from "@pki/hsm";
import type { Clock } from "../clock.ts";
import { bindSigner, openToken } from "../keyring.ts";
import { buildAndSignCrl, inMemorySource } from "./builder.ts";
import { crlUrls } from "./publisher.ts";

const DAY = 86_400_000;

export interface RootCrlResult {
  rootId: string;
  meta: CrlMeta;
}

/** Signs a fresh CRL for every root that is not expired. Opens the root token unless given one. */
export async function signRootCrls(config: Config, inventory: Inventory, clock: Clock, rootToken?: Token): Promise<RootCrlResult[]> {
  const issuers = await inventory.issuers.list();
  const now = clock.now();
  const roots = issuers.filter((i) => i.role === "root" && i.status !== "expired" && i.notAfter > now);
  if (roots.length === 0) return [];
  const token = rootToken ?? openToken(config, "root");
  const results: RootCrlResult[] = [];
  try {
    for (const root of roots) {
      const { signer, facts } = await bindSigner(token, root);
      const children = issuers.filter((i): i is IssuerRecord & { revokedAt: Date } => i.parentId === root.id && i.revokedAt !== null && i.notAfter > now);
      const meta = await inventory.crls.publish(root.id, "full", async ({ number, writePart }) => {
        const thisUpdate = clock.now();
        // Never past the root's own validity (RFC 5280 path validation would reject it).
        const nextUpdate = new Date(Math.min(thisUpdate.getTime() + config.revocation.rootCrlDays * DAY, root.notAfter.getTime()));
        const entries: RevokedEntry[] = children.map((c) => ({ serialHex: c.serial, revokedAt: Math.floor(c.revokedAt.getTime() / 1000), reason: c.revocationReason ?? 0 }));
        const signed = await buildAndSignCrl({ issuer: facts, number, thisUpdate, nextUpdate, scope: { url: crlUrls(config.publicUrl, root.id).full, covers: "ca" } }, inMemorySource(entries), signer, "full", writePart);
        return { ...signed, thisUpdate: new Date(Math.floor(thisUpdate.getTime() / 1000) * 1000), nextUpdate: new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000) };
      });
      await inventory.audit.record({ actor: "ceremony", action: "crl.sign-root", target: root.id, details: { number: meta.number.toString(), entries: meta.entries, nextUpdate: meta.nextUpdate.toISOString() } });
      results.push({ rootId: root.id, meta });
    }
  } finally {
    if (!rootToken) token.close();
  }
  return results;
}

/** Roots whose CRL is missing or has less than a third of its lifetime left: re-sign them in the next ceremony. */
export async function rootCrlsDue(config: Config, inventory: Inventory, clock: Clock): Promise<string[]> {
  const now = clock.now().getTime();
  const due: string[] = [];
  for (const root of (await inventory.issuers.list()).filter((i) => i.role === "root" && i.status !== "expired")) {
    const state = await inventory.crls.state(root.id);
    if (!state?.full || state.full.nextUpdate.getTime() - now < (config.revocation.rootCrlDays * DAY) / 3) due.push(root.id);
  }
  return due;
}
