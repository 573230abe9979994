// `pki crl`: publish CRLs now, sign the root CRL in a ceremony, see what is published.
import type { Command } from "commander";
import { signRootCrls, systemClock } from "@pki/authority";
import { CrlPublisher } from "@pki/revocation";
import { ceremonyConfig, cfg, operator, withCa, withInventory } from "../context.ts";

export function registerCrlCommands(program: Command): void {
  const crl = program.command("crl").description("certificate revocation lists");
  crl
    .command("publish")
    .description("sign and publish full and delta CRLs now for every issuer this token serves (or one)")
    .option("--issuer <id>", "only this issuer")
    .action(async (opts: { issuer?: string }) => {
      await withCa(cfg(), async (ca) => {
        const publisher = new CrlPublisher({ inventory: ca.inventory, keyring: ca.keyring, config: ca.config, clock: ca.clock });
        for (const { issuerId, full, delta } of await publisher.publishNow(opts.issuer, { actor: operator() })) {
          console.log(`${issuerId}  full #${full.number} (${full.entries} entries, next update ${full.nextUpdate.toISOString()})  delta #${delta.number} (${delta.entries} entries)`);
        }
      });
    });

  crl
    .command("sign-root")
    .description("ceremony: sign each root's CRL, and its OCSP answers about its intermediates, with the root key (needs the root token PIN)")
    .action(async () => {
      await withInventory(cfg(), async (inventory) => {
        const signed = await signRootCrls(await ceremonyConfig(), inventory, systemClock);
        if (signed.length === 0) console.log("no unexpired root to sign a CRL for");
        for (const s of signed)
          console.log(
            `${s.rootId}  root CRL #${s.meta.number} (${s.meta.entries} entries) and ${s.intermediateStatuses} intermediate OCSP response(s), next update ${s.meta.nextUpdate.toISOString()}`,
          );
      });
    });

  crl
    .command("status")
    .description("published CRLs: number, entries, thisUpdate, nextUpdate per issuer")
    .action(async () => {
      await withInventory(cfg(), async (inventory) => {
        for (const state of await inventory.crls.states()) {
          for (const kind of ["full", "delta"] as const) {
            const meta = state[kind];
            if (meta) console.log([state.issuerId, kind.padEnd(5), `#${meta.number}`, `${meta.entries} entries`, meta.thisUpdate.toISOString(), meta.nextUpdate.toISOString()].join("  "));
          }
        }
      });
    });
}
