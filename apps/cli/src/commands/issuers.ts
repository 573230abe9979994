// `pki issuers`: roots and intermediates: list, and the ceremonies that rotate, activate and
// (in an emergency) revoke an intermediate. The root token's PIN (PKI_ROOT_PIN /
// PKI_ROOT_PIN_FILE) is needed for the ceremonies only.
import type { Command } from "commander";
import { CaError } from "@pki/x509";
import { activateIntermediate, openCa, presentedIssuerStatus, RecordedReissue, revokeIntermediate, rotateIntermediate, systemClock } from "@pki/authority";
import type { Inventory } from "@pki/db";
import { ceremonyConfig, cfg, operator, withInventory } from "../context.ts";
import { date } from "../options.ts";

type AffectedCertificates = Awaited<ReturnType<typeof revokeIntermediate>>["affected"];

export function registerIssuerCommands(program: Command): void {
  const issuers = program.command("issuers").description("root and intermediate CAs");
  issuers
    .command("list")
    .description("every issuer with role, status and validity")
    .action(async () => {
      await withInventory(cfg(), async (inventory) => {
        for (const i of await inventory.issuers.list()) {
          console.log([i.id, i.role.padEnd(12), presentedIssuerStatus(i).padEnd(7), i.notAfter.toISOString(), i.keyAlgorithm, i.subject, i.keyUri].join("  "));
        }
      });
    });

  issuers
    .command("rotate")
    .description("new intermediate key on the issuing token, signed by the root, staged, then active now or --at TIME; the previous one retires")
    .option("--hierarchy <name>", "which hierarchy", "default")
    .option("--at <time>", "activate at this time (RFC 3339) instead of now; the scheduler switches it", date)
    .action(async (opts: { hierarchy: string; at?: Date }) => {
      await withInventory(cfg(), async (inventory) => {
        const report = await rotateIntermediate(await ceremonyConfig(), inventory, systemClock, { hierarchy: opts.hierarchy, activateAt: opts.at, actor: operator() });
        for (const line of report.lines) console.log(line);
      });
    });

  issuers
    .command("activate <id>")
    .description("activate a staged intermediate now (the previous active one retires)")
    .action(async (id: string) => {
      await withInventory(cfg(), async (inventory) => {
        const { activated, retired } = await activateIntermediate(cfg(), inventory, id, new Date(), operator());
        console.log(`activated ${activated.id}`);
        for (const r of retired) console.log(`retired ${r.id}`);
      });
    });

  issuers
    .command("revoke <id>")
    .description("emergency: revoke an intermediate on its root's record, activate a replacement, list (and --reissue) its certificates")
    .option("--reason <reason>", "keyCompromise, cACompromise, superseded, cessationOfOperation, affiliationChanged or unspecified", "keyCompromise")
    .option("--reissue", "re-issue every unexpired certificate it signed from the new intermediate (same key and names)")
    .option("--json", "one JSON object per affected certificate")
    .action(async (id: string, opts: { reason: string; reissue?: boolean; json?: boolean }) => {
      await withInventory(cfg(), async (inventory) => {
        // Recorded in the inventory like the API's re-issue: the console and any API replica
        // show its progress, and it never runs alongside another process's re-issue of it.
        // (revokeIntermediate says what is wrong with an unknown issuer or a root)
        const recorded = opts.reissue && (await inventory.issuers.get(id))?.role === "intermediate";
        const reissue = recorded ? await RecordedReissue.claim(inventory, systemClock, id, operator(), (error) => console.error(`re-issue: ${(error as Error).message}`)) : undefined;
        if (recorded && !reissue)
          throw new CaError("conflict", `certificates of ${id} are being re-issued right now by another process (see GET /v1/issuers/${id}/reissue); run this again once it is done`);
        let report: Awaited<ReturnType<typeof revokeIntermediate>>;
        try {
          report = await revokeIntermediate(await ceremonyConfig(), inventory, systemClock, { issuerId: id, reason: opts.reason, actor: operator() });
        } catch (error) {
          await reissue?.finishEarly(`not started: ${(error as Error).message}`);
          throw error;
        }
        for (const line of report.lines) console.error(line);
        for (const c of report.affected) {
          if (opts.json) console.log(JSON.stringify({ serial: c.serial, subject: c.subject, sans: c.sans, notAfter: c.notAfter, requester: c.requester }));
          else console.log([c.serial, c.notAfter.toISOString(), c.subject || "-", c.sans.join(",")].join("  "));
        }
        if (reissue && !report.affected.length) await reissue.finishEarly();
        if (reissue && report.affected.length) await reissueAffected(reissue, inventory, report.affected);
      });
    });
}

/** Re-issues the revoked intermediate's certificates from its replacement, with progress on stderr. */
async function reissueAffected(reissue: RecordedReissue, inventory: Inventory, affected: AffectedCertificates): Promise<void> {
  let ca: Awaited<ReturnType<typeof openCa>>;
  try {
    ca = await openCa(cfg(), systemClock, inventory);
  } catch (error) {
    await reissue.finishEarly(`not started: ${(error as Error).message}`);
    throw error;
  }
  try {
    const total = affected.length;
    let lastShown = 0;
    const result = await reissue.run({ authority: ca.authority, inventory, config: cfg() }, affected, (r) => {
      const done = r.reissued.length + r.failedCount;
      // a line per 1,000 on a large fleet, so the operator sees it moving
      if (done - lastShown >= 1000 || done === total) {
        lastShown = done;
        console.error(`${done}/${total} processed (${r.failedCount} failed)`);
      }
    });
    for (const r of result.reissued) console.error(`re-issued ${r.from} as ${r.to}`);
    for (const f of result.failed) console.error(`could not re-issue ${f.serial}: ${f.error}`);
    if (result.failedCount > result.failed.length) console.error(`(${result.failedCount - result.failed.length} more failures not listed)`);
    if (result.failedCount) throw new CaError("unavailable", `${result.failedCount} certificate(s) could not be re-issued; run the command's re-issue again after fixing the cause`);
    if (result.reissued.length + result.failedCount < total) throw new CaError("unavailable", `stopped after ${result.reissued.length} of ${total}: another process took the re-issue over`);
  } finally {
    await ca.close();
  }
}
