// The root's CRL lists revoked intermediates and is signed by the root key, which lives on
// its own token and is used only in ceremonies. So it is long-lived (PKI_ROOT_CRL_DAYS),
// signed at init and by `pki crl sign-root`, and stored in crl_state like every other
// CRL: the serving processes publish it without ever holding the root PIN. The root's
// OCSP answers about its intermediates are signed with it, valid as long (ocsp/root-status.ts).
import type { Config } from "@pki/config";
import type { CrlMeta, Inventory, IssuerRecord, RevokedEntry } from "@pki/db";
import type { KeyManager } from "@pki/hsm";
import type { Clock } from "../clock.ts";
import { bindSigner, openToken } from "../keyring.ts";
import { buildAndSignCrl, inMemorySource } from "./builder.ts";
import { crlUrls } from "@pki/x509";
import { signIntermediateStatuses } from "../ocsp/root-status.ts";

const DAY = 86_400_000;

export interface RootCrlResult {
  rootId: string;
  meta: CrlMeta;
  /** OCSP responses about its intermediates the root signed with the CRL */
  intermediateStatuses: number;
}

/** Signs a fresh CRL for every root that is not expired. Opens the root token unless given one. */
export async function signRootCrls(config: Config, inventory: Inventory, clock: Clock, rootToken?: KeyManager): Promise<RootCrlResult[]> {
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
        const signed = await buildAndSignCrl(
          { issuer: facts, number, thisUpdate, nextUpdate, scope: { url: crlUrls(config.publicUrl, root.id).full, covers: "ca" } },
          inMemorySource(entries),
          signer,
          "full",
          writePart,
        );
        return { ...signed, thisUpdate: new Date(Math.floor(thisUpdate.getTime() / 1000) * 1000), nextUpdate: new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000) };
      });
      await inventory.audit.record({
        actor: "ceremony",
        action: "crl.sign-root",
        target: root.id,
        details: { number: meta.number.toString(), entries: meta.entries, nextUpdate: meta.nextUpdate.toISOString() },
      });
      const statuses = await signIntermediateStatuses(inventory, { record: root, facts, signer }, issuers, { thisUpdate: meta.thisUpdate, nextUpdate: meta.nextUpdate });
      await inventory.audit.record({
        actor: "ceremony",
        action: "ocsp.sign-root",
        target: root.id,
        details: { intermediates: statuses.map((s) => `${s.serial}:${s.certStatus}`), nextUpdate: meta.nextUpdate.toISOString() },
      });
      results.push({ rootId: root.id, meta, intermediateStatuses: statuses.length });
    }
  } finally {
    if (!rootToken) token.close();
  }
  return results;
}

/**
 * Roots whose CRL is missing or has less than a third of its lifetime left, or one of
 * whose unexpired intermediates has no root-signed OCSP response saying its current
 * status (a new or revoked intermediate, or a CA set up before roots signed them):
 * re-sign them in the next ceremony.
 */
export async function rootCrlsDue(config: Config, inventory: Inventory, clock: Clock): Promise<string[]> {
  const now = clock.now().getTime();
  const issuers = await inventory.issuers.list();
  const due: string[] = [];
  for (const root of issuers.filter((i) => i.role === "root" && i.status !== "expired")) {
    const state = await inventory.crls.state(root.id);
    if (!state?.full || state.full.nextUpdate.getTime() - now < (config.revocation.rootCrlDays * DAY) / 3) {
      due.push(root.id);
      continue;
    }
    for (const intermediate of issuers.filter((i) => i.parentId === root.id && i.notAfter.getTime() > now)) {
      const response = await inventory.ocspResponses.get(intermediate.serial);
      const current = response && response.issuerId === root.id && response.nextUpdate.getTime() > now && response.certStatus === (intermediate.revokedAt ? "revoked" : "good");
      if (!current) {
        due.push(root.id);
        break;
      }
    }
  }
  return due;
}
