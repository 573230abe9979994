// `pki doctor`: the start-up checks and live health, one line each; exit 1 if any fails.
import type { Command } from "commander";
import { cfg, withCa } from "../context.ts";

export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description("the start-up checks (token keys match certificates, active intermediate valid), then live health: token signs, database and clock, CRLs fresh, scheduler jobs")
    .action(async () => {
      const { runDoctor } = await import("@pki/doctor");
      await withCa(cfg(), async (ca) => {
        const checks = await runDoctor(ca);
        for (const c of checks) console.log([c.status.padEnd(4), c.name, c.detail].join("  "));
        if (checks.some((c) => c.status === "fail")) process.exitCode = 1;
      });
    });
}
