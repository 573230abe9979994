// `pki issue`: the operator signs a CSR, through the same authority as the issuing API.
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { CaError, DEFAULT_PROFILE, PROFILE_NAMES, isProfileName, parseCsr } from "@pki/x509";
import { cfg, fromCaller, operator, withCa } from "../context.ts";
import { positiveInt } from "../options.ts";

export function registerIssueCommand(program: Command): void {
  program
    .command("issue")
    .description("sign a PKCS#10 CSR under a profile, as the operator")
    .requiredOption("--csr <file>", "CSR file, PEM or DER")
    .option("--profile <name>", `one of ${PROFILE_NAMES.join(", ")}`, DEFAULT_PROFILE)
    .option("--ttl <seconds>", "lifetime in seconds", positiveInt("--ttl"))
    .option("--out <file>", "write the certificate (PEM) here instead of stdout")
    .option("--chain-out <file>", "write the chain (intermediate then root, PEM) here")
    .action(async (opts: { csr: string; profile: string; ttl?: number; out?: string; chainOut?: string }) => {
      const { profile } = opts;
      if (!isProfileName(profile)) throw new CaError("bad_request", `unknown profile '${profile}'; use one of ${PROFILE_NAMES.join(", ")}`);
      const csrPath = fromCaller(opts.csr); // outside the try: a configuration problem is named as such
      let input: Buffer;
      try {
        input = readFileSync(csrPath);
      } catch (error) {
        throw new CaError("bad_request", `cannot read CSR file ${csrPath}`, { cause: error });
      }
      const csr = parseCsr(input);
      await withCa(cfg(), async (ca) => {
        const issued = await ca.authority.issue({ csr, profile, ttlSeconds: opts.ttl, requester: { kind: "operator", actor: operator() } });
        if (opts.out) writeFileSync(fromCaller(opts.out), issued.pem);
        else process.stdout.write(issued.pem);
        if (opts.chainOut) writeFileSync(fromCaller(opts.chainOut), issued.chain.join(""));
        console.error(`issued ${issued.serial} by ${issued.issuerId} (${issued.profile}), valid until ${issued.notAfter.toISOString()}`);
      });
    });
}
