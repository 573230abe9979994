// Setting up: the ceremony (`pki init`) and the database schema (`pki migrate`).
import type { Command } from "commander";
import { CaError } from "@pki/x509";
import { initCa, systemClock } from "@pki/authority";
import { migrateDatabase } from "@pki/db";
import { cfg, withInventory } from "../context.ts";

export function registerSetupCommands(program: Command): void {
  program
    .command("init")
    .description("the ceremony: token(s), root and first intermediate keys on the token, admin token (idempotent)")
    .option("--hierarchy <name>", "a separate trust domain with its own root and intermediates (e.g. partners)", "default")
    .action(async (opts: { hierarchy: string }) => {
      // The ceremony sets the database up too: it runs with the migration (owner) user. (The
      // embedded database migrates whenever it is opened.)
      const url = cfg().databaseUrl;
      if (url) await migrateDatabase({ url, embeddedDir: cfg().embeddedDatabaseDir, progress: (step) => console.log(step) });
      await withInventory(cfg(), async (inventory) => {
        const report = await initCa(cfg(), inventory, systemClock, "cli:init", opts.hierarchy);
        for (const line of report.lines) console.log(line);
        console.log(`root certificate: ${report.rootPemPath}`);
      });
    });

  program
    .command("migrate")
    .description("bring the database schema up to date (the only step besides init that changes it; the roles only check it)")
    .option("--grant-roles", "then create the per-role PostgreSQL users that are missing and set their grants (prisma/roles.sql)")
    .action(async (opts: { grantRoles?: boolean }) => {
      if (opts.grantRoles && !cfg().databaseUrl) throw new CaError("bad_request", "--grant-roles is for PostgreSQL (DATABASE_URL): the embedded database has a single user");
      const steps: string[] = [];
      await migrateDatabase({ url: cfg().databaseUrl, embeddedDir: cfg().embeddedDatabaseDir, progress: (step) => steps.push(step) }, { grantRoles: opts.grantRoles ?? false });
      for (const step of steps) console.log(step);
      console.log(`database schema is current${opts.grantRoles ? "; per-role users' grants set (pki_api, pki_ocsp, pki_crl, pki_scheduler)" : ""}`);
    });
}
