// `pki admin`: named operator tokens (the console's Operators page does the same through @pki/policy).
import type { Command } from "commander";
import { writeSecretFile } from "@pki/authority";
import { addOperator, assertAdminName, listOperators, removeOperator } from "@pki/policy";
import { cfg, operator, withInventory } from "../context.ts";

export function registerAdminCommands(program: Command): void {
  const admins = program.command("admin").alias("admins").description("operators: their own admin tokens, for the API and the console");
  admins
    .command("add <name>")
    .description("create an operator's admin token and print it (shown once, stored as SHA-256)")
    .option("--token-out <file>", "write the token to this file (mode 0600) instead of stdout")
    .action(async (name: string, opts: { tokenOut?: string }) => {
      assertAdminName(name);
      await withInventory(cfg(), async (inventory) => {
        const { token } = await addOperator(inventory, name, { actor: operator() });
        if (opts.tokenOut) writeSecretFile(opts.tokenOut, `${token}\n`);
        else console.log(token);
        console.error(`admin '${name}' added; the token is not stored and cannot be shown again. Its actions are audited as admin:${name}.`);
      });
    });

  admins
    .command("list")
    .description("every admin token ever made: name, created, revoked (never the tokens)")
    .option("--json", "one JSON object per line")
    .action(async (opts: { json?: boolean }) => {
      await withInventory(cfg(), async (inventory) => {
        for (const a of await listOperators(inventory)) {
          const view = { name: a.name, createdAt: a.createdAt.toISOString(), revokedAt: a.revokedAt?.toISOString() ?? null };
          if (opts.json) console.log(JSON.stringify(view));
          else console.log([a.name.padEnd(24), view.createdAt, view.revokedAt ? `revoked ${view.revokedAt}` : "live"].join("  "));
        }
      });
    });

  admins
    .command("remove <name>")
    .description("revoke an operator's admin token; their console sessions end at once")
    .action(async (name: string) => {
      assertAdminName(name);
      await withInventory(cfg(), async (inventory) => {
        const removed = await removeOperator(inventory, name, new Date(), { actor: operator() });
        console.log(`admin '${name}' removed; ${removed.sessionsEnded} console session(s) ended`);
      });
    });
}
