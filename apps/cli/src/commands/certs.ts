// `pki certs`: the certificate inventory: list, revoke, show.
import type { Command } from "commander";
import { CaError, canonicalSerial, toPem } from "@pki/x509";
import { CaEvents, REASON_NAMES, REVOCATION_REASONS, revokeCertificate, systemClock } from "@pki/authority";
import type { CertificateState } from "@pki/db";
import { cfg, operator, withInventory } from "../context.ts";
import { date, positiveInt, searchTerm } from "../options.ts";

export function registerCertificateCommands(program: Command): void {
  const certs = program.command("certs").alias("cert").description("the certificate inventory");
  certs
    .command("list")
    .description("list certificates, soonest expiry first")
    .option("--status <status>", "pending, valid, revoked, failed or expired")
    .option("--issuer <id>", "issuer id")
    .option("--profile <name>", "profile")
    .option("-q, --query <text>", "text in the subject or a SAN, at least 3 characters", searchTerm)
    .option("--expires-before <date>", "notAfter before this date", date)
    .option("--expires-after <date>", "notAfter after this date", date)
    .option("--limit <n>", "at most this many", positiveInt("--limit"), 100)
    .option("--cursor <cursor>", "continue from a previous page")
    .option("--json", "one JSON object per line")
    .action(async (opts: { status?: string; issuer?: string; profile?: string; query?: string; expiresBefore?: Date; expiresAfter?: Date; limit: number; cursor?: string; json?: boolean }) => {
      const states = ["pending", "valid", "revoked", "failed", "expired"];
      if (opts.status && !states.includes(opts.status)) throw new CaError("bad_request", `--status must be one of ${states.join(", ")}`);
      await withInventory(cfg(), async (inventory) => {
        const page = await inventory.certificates
          .list({
            status: opts.status as CertificateState | undefined,
            issuerId: opts.issuer,
            profile: opts.profile,
            q: opts.query,
            expiresBefore: opts.expiresBefore,
            expiresAfter: opts.expiresAfter,
            limit: opts.limit,
            cursor: opts.cursor,
          })
          .catch((error: Error) => {
            if (error instanceof RangeError) throw new CaError("bad_request", `--cursor ${error.message}`, { cause: error });
            throw error;
          });
        const now = new Date();
        for (const c of page.items) {
          const status = c.status === "valid" && c.notAfter < now ? "expired" : c.status;
          if (opts.json)
            console.log(
              JSON.stringify({
                serial: c.serial,
                status,
                issuerId: c.issuerId,
                profile: c.profile,
                subject: c.subject,
                sans: c.sans,
                notBefore: c.notBefore,
                notAfter: c.notAfter,
                requester: c.requester,
              }),
            );
          else console.log([c.serial, status.padEnd(7), c.notAfter.toISOString(), c.profile.padEnd(6), c.subject || "-", c.sans.join(",")].join("  "));
        }
        if (page.nextCursor) console.error(`more: --cursor ${page.nextCursor}`);
      });
    });

  certs
    .command("revoke <serial>")
    .description("revoke a certificate; OCSP and the CRLs follow within seconds wherever a publisher runs")
    .option("--reason <reason>", `one of ${Object.keys(REVOCATION_REASONS).join(", ")}`, "unspecified")
    .action(async (serial: string, opts: { reason: string }) => {
      await withInventory(cfg(), async (inventory) => {
        const revoked = await revokeCertificate({ inventory, events: new CaEvents(), clock: systemClock }, { serial, reason: opts.reason, actor: operator() });
        console.log(`revoked ${revoked.serial} (${REASON_NAMES[revoked.reason]}) at ${revoked.revokedAt.toISOString()}`);
        for (const successor of revoked.successorsRevoked ?? []) console.log(`revoked ${successor} (${REASON_NAMES[revoked.reason]}): a successor of ${revoked.serial}`);
      });
    });

  certs
    .command("show <serial>")
    .description("one certificate: status, revocation, names, lineage; --pem for the certificate itself")
    .option("--pem", "print only the certificate, PEM")
    .option("--json", "one JSON object")
    .action(async (typed: string, opts: { pem?: boolean; json?: boolean }) => {
      const serial = canonicalSerial(typed);
      if (serial === undefined) throw new CaError("bad_request", `'${typed}' is not a certificate serial (hex, plain or colon-separated)`);
      await withInventory(cfg(), async (inventory) => {
        const c = await inventory.certificates.get(serial);
        if (!c) throw new CaError("not_found", `no certificate with serial ${serial}`);
        const status = c.status === "valid" && c.notAfter <= new Date() ? "expired" : c.status;
        const pem = c.der ? toPem(c.der) : null;
        if (opts.pem) {
          if (!pem) throw new CaError("not_found", `certificate ${serial} is ${c.status}: there is no signed certificate`);
          process.stdout.write(pem);
          return;
        }
        const view = {
          serial: c.serial,
          status,
          issuerId: c.issuerId,
          profile: c.profile,
          subject: c.subject,
          sans: c.sans,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          requester: c.requester,
          autoRenew: c.autoRenew,
          predecessor: c.predecessorSerial,
          successor: c.successorSerial,
          revokedAt: c.revokedAt?.toISOString() ?? null,
          revocationReason: c.revocationReason === null ? null : REASON_NAMES[c.revocationReason],
        };
        if (opts.json) console.log(JSON.stringify({ ...view, certificate: pem }));
        else for (const [k, v] of Object.entries(view)) console.log(`${k.padEnd(17)}${Array.isArray(v) ? v.join(", ") : (v ?? "-")}`);
      });
    });
}
