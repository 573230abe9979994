#!/usr/bin/env -S npx tsx
// `pki`: the operator's command line. Every failure is one line on stderr and exit code 1.
// Each command group lives in commands/<group>.ts; this file puts them together, in the
// order `pki help` lists them, and turns whatever they throw into that one line.
import { Command, CommanderError } from "commander";
import { ConfigError } from "@pki/config";
import { CaError } from "@pki/x509";
import { StartupCheckError } from "@pki/authority";
import { registerSetupCommands } from "./commands/setup.ts";
import { registerIssueCommand } from "./commands/issue.ts";
import { registerCertificateCommands } from "./commands/certs.ts";
import { registerIssuerCommands } from "./commands/issuers.ts";
import { registerSchedulerCommands } from "./commands/scheduler.ts";
import { registerDoctorCommand } from "./commands/doctor.ts";
import { registerCrlCommands } from "./commands/crl.ts";
import { registerProvisionerCommands } from "./commands/provisioners.ts";
import { registerAdminCommands } from "./commands/admins.ts";

// Commander's own errors (unknown option, bad value) become the same single `pki: …` line
// as every other failure, instead of a message plus the whole help text.
const program = new Command("pki")
  .description("private certificate authority: ceremonies, issuance and inventory")
  .exitOverride()
  .configureOutput({ writeErr: () => {} });

registerSetupCommands(program);
registerIssueCommand(program);
registerCertificateCommands(program);
registerIssuerCommands(program);
registerSchedulerCommands(program);
registerDoctorCommand(program);
registerCrlCommands(program);
registerProvisionerCommands(program);
registerAdminCommands(program);

function oneLine(error: unknown): string {
  if (error instanceof CommanderError) return error.message.replace(/^error: /, "");
  if (error instanceof ConfigError) return `configuration: ${error.problems.join("; ")}`;
  if (error instanceof CaError || error instanceof StartupCheckError) return error.message;
  if (error instanceof Error) return error.message.split("\n")[0]!;
  return String(error);
}

// With no command, say what there is rather than nothing.
const argv = process.argv.length <= 2 ? [...process.argv, "help"] : process.argv;

program.parseAsync(argv).then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof CommanderError && (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help")) process.exit(0);
    console.error(`pki: ${oneLine(error)}`);
    process.exit(1);
  },
);
