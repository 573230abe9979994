// `pki provisioner`: the credentials services enrol with (API tokens and ACME servers).
import type { Command } from "commander";
import { CaError, DEFAULT_PROFILE, PROFILE_NAMES } from "@pki/x509";
import { writeSecretFile } from "@pki/authority";
import { createProvisioner, updateProvisioner } from "@pki/policy";
import { createEabKey } from "@pki/acme";
import { cfg, fromCaller, operator, withInventory } from "../context.ts";
import { positiveInt } from "../options.ts";

export function registerProvisionerCommands(program: Command): void {
  const provisioners = program.command("provisioner").alias("provisioners").description("credentials services enrol with: scoped to profiles, name patterns and a maximum lifetime");
  provisioners
    .command("add <name>")
    .description("create a provisioner and print its token (shown once, stored hashed)")
    .requiredOption("--names <patterns...>", "name patterns: DNS:api.example.com DNS:*.svc.example.com DNS:.example.com IP:10.0.0.0/8 URI:spiffe://prod.example/ns/app/* email:@example.com CN:batch-*")
    .option("--profiles <profiles...>", `profiles it may request (${PROFILE_NAMES.join(", ")})`, [DEFAULT_PROFILE])
    .option("--max-ttl <seconds>", "longest lifetime it may get", positiveInt("--max-ttl"), 86400)
    .option("--hierarchy <name>", "issuing hierarchy", "default")
    .option("--token-out <file>", "write the token to this file (mode 0600) instead of stdout")
    .option("--type <type>", "token (a bearer token for the REST API) or acme (an ACME server at /acme/NAME/directory)", "token")
    .option("--eab", "ACME: accounts need an external account binding key (pki provisioner eab NAME)")
    .action(async (name: string, opts: { names: string[]; profiles: string[]; maxTtl: number; hierarchy: string; tokenOut?: string; type: string; eab?: boolean }) => {
      const { type } = opts;
      if (type !== "token" && type !== "acme") throw new CaError("bad_request", `--type must be token or acme, not '${type}'`);
      await withInventory(cfg(), async (inventory) => {
        const { record, token } = await createProvisioner(
          { inventory, config: cfg() },
          { name, profiles: opts.profiles, names: opts.names, maxTtlSeconds: opts.maxTtl, hierarchy: opts.hierarchy, type, eab: opts.eab === true },
          { actor: operator() },
        );
        if (type === "acme") {
          const host = cfg().api.tlsNames[0] ?? "localhost";
          console.log(`https://${host}:${cfg().http.apiPort}/acme/${record.name}/directory`);
          console.error(
            `ACME provisioner '${record.name}' (${record.id}): profiles ${record.profiles.join(", ")}; names ${record.names.join(" ")}; max ${record.maxTtlSeconds} s${opts.eab ? `; accounts need an EAB key: pki provisioner eab ${record.name}` : ""}`,
          );
          return;
        }
        if (opts.tokenOut) writeSecretFile(fromCaller(opts.tokenOut), `${token}\n`);
        else console.log(token);
        console.error(
          `provisioner '${record.name}' (${record.id}): profiles ${record.profiles.join(", ")}; names ${record.names.join(" ")}; max ${record.maxTtlSeconds} s. The token is not stored and cannot be shown again.`,
        );
      });
    });

  provisioners
    .command("eab <name>")
    .description("create an external account binding key for an ACME provisioner; prints its kid and base64url HMAC key (shown once)")
    .action(async (name: string) => {
      await withInventory(cfg(), async (inventory) => {
        const { kid, hmacKey } = await createEabKey(inventory, name, { actor: operator() });
        console.log(`kid: ${kid}`);
        console.log(`hmac key: ${hmacKey}`);
        console.error(`e.g. certbot --eab-kid ${kid} --eab-hmac-key ${hmacKey}; lego --eab --kid ${kid} --hmac ${hmacKey}. The key is bound to the first account that uses it.`);
      });
    });

  provisioners
    .command("list")
    .description("every live provisioner (never their tokens)")
    .option("--all", "include removed ones")
    .option("--json", "one JSON object per line")
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      await withInventory(cfg(), async (inventory) => {
        const acme = await inventory.acme.acmeProvisionerIds();
        for (const p of await inventory.provisioners.list({ includeRemoved: opts.all })) {
          const state = p.deletedAt ? "removed" : p.disabled ? "disabled" : "active";
          const type = acme.has(p.id) ? "acme" : "token";
          if (opts.json) console.log(JSON.stringify({ id: p.id, name: p.name, type, state, profiles: p.profiles, names: p.names, maxTtlSeconds: p.maxTtlSeconds, hierarchy: p.hierarchy }));
          else console.log([p.name.padEnd(16), state.padEnd(8), type.padEnd(5), p.profiles.join(","), `${p.maxTtlSeconds}s`, p.names.join(" ")].join("  "));
        }
      });
    });

  provisioners
    .command("update <name>")
    .description("change a provisioner's scope; applies to its next enrolment and to the next renewal of every certificate it enrolled")
    .option("--names <patterns...>", "replace the name patterns")
    .option("--profiles <profiles...>", "replace the profiles")
    .option("--max-ttl <seconds>", "new longest lifetime", positiveInt("--max-ttl"))
    .action(async (name: string, opts: { names?: string[]; profiles?: string[]; maxTtl?: number }) => {
      if (!opts.names && !opts.profiles && opts.maxTtl === undefined) throw new CaError("bad_request", "give at least one of --names, --profiles, --max-ttl");
      await withInventory(cfg(), async (inventory) => {
        const p = await updateProvisioner({ inventory, config: cfg() }, name, { names: opts.names, profiles: opts.profiles, maxTtlSeconds: opts.maxTtl }, { actor: operator() });
        console.log(`provisioner '${p.name}': profiles ${p.profiles.join(", ")}; names ${p.names.join(" ")}; max ${p.maxTtlSeconds} s`);
      });
    });

  for (const [command, description] of [
    ["remove", "remove a provisioner: its token stops working at once and its certificates can no longer renew"],
    ["disable", "stop a provisioner's token working until it is enabled again"],
    ["enable", "let a disabled provisioner's token work again"],
  ] as const) {
    provisioners
      .command(`${command} <name>`)
      .description(description)
      .action(async (name: string) => {
        await withInventory(cfg(), async (inventory) => {
          const audit = { actor: operator(), action: `provisioner.${command}` };
          const record = command === "remove" ? await inventory.provisioners.remove(name, new Date(), audit) : await inventory.provisioners.setDisabled(name, command === "disable", audit);
          if (!record) throw new CaError("not_found", `no provisioner named '${name}'`);
          console.log(`provisioner '${name}' ${command === "remove" ? "removed" : `${command}d`}`);
        });
      });
  }
}
