#!/usr/bin/env -S npx tsx
// `pki`: the operator's command line. Every failure is one line on stderr and exit code 1.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { loadConfig, ConfigError, type Config } from "@pki/config";
import { CaError, DEFAULT_PROFILE, PROFILE_NAMES, canonicalSerial, isProfileName, parseCsr } from "@pki/x509";
import {
  StartupCheckError,
  initCa,
  openCa,
  openInventory,
  systemClock,
  rotateIntermediate,
  activateIntermediate,
  writeSecretFile,
  presentedIssuerStatus,
  revokeIntermediate,
  RecordedReissue,
} from "@pki/authority";
import { migrateDatabase, type CertificateState } from "@pki/db";
import { CaEvents, REASON_NAMES, REVOCATION_REASONS, revokeCertificate, signRootCrls } from "@pki/authority";
import { CrlPublisher } from "@pki/revocation";
import { toPem } from "@pki/x509";
import { addOperator, assertAdminName, createProvisioner, listOperators, removeOperator, updateProvisioner } from "@pki/policy";
import { createEabKey } from "@pki/acme";

// Commander's own errors (unknown option, bad value) become the same single `pki: …` line
// as every other failure, instead of a message plus the whole help text.
const program = new Command("pki")
  .description("private certificate authority: ceremonies, issuance and inventory")
  .exitOverride()
  .configureOutput({ writeErr: () => {} });

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
  return n;
};
const date = (value: string) => {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError("must be a date such as 2026-12-01 or 2026-12-01T12:00:00Z");
  return d;
};

// The API's rule for q: a shorter term would scan the whole inventory.
const searchTerm = (value: string) => {
  if ([...value].length < 3) throw new InvalidArgumentError("must be at least 3 characters (shorter terms would scan the whole inventory)");
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) throw new InvalidArgumentError("must not contain control characters");
  return value;
};

let config: Config;
const cfg = (): Config => (config ??= loadConfig());
const operator = () => `cli:${cfg().operator}`;
/** A file named on the command line, relative to where the user ran the command. */
const fromCaller = (file: string) => path.resolve(cfg().invocationDir, file);

/** Reads a secret from the terminal without echoing it. */
function promptSecret(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = process.stdin;
    process.stderr.write(question);
    input.setRawMode(true);
    input.resume();
    let value = "";
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          input.setRawMode(false);
          input.pause();
          input.off("data", onData);
          process.stderr.write("\n");
          return resolve(value);
        }
        if (ch === "\u0003") {
          input.setRawMode(false);
          return reject(new CaError("bad_request", "cancelled"));
        }
        value = ch === "\u007f" ? value.slice(0, -1) : value + ch;
      }
    };
    input.on("data", onData);
  });
}

/**
 * Configuration for a ceremony that needs the root key: the root PIN comes from
 * PKI_ROOT_PIN / PKI_ROOT_PIN_FILE, or is asked for on the terminal, for this command only.
 */
async function ceremonyConfig(): Promise<Config> {
  const c = cfg();
  if (!c.hsm.root.pin && process.stdin.isTTY) c.hsm.root.pin = await promptSecret(`PIN of the root token '${c.hsm.root.label}': `);
  return c;
}

program
  .command("init")
  .description("the ceremony: token(s), root and first intermediate keys on the token, admin token (idempotent)")
  .option("--hierarchy <name>", "a separate trust domain with its own root and intermediates (e.g. partners)", "default")
  .action(async (opts: { hierarchy: string }) => {
    // The ceremony sets the database up too: it runs with the migration (owner) user. (The
    // embedded database migrates whenever it is opened.)
    const url = cfg().databaseUrl;
    if (url) await migrateDatabase({ url, embeddedDir: cfg().embeddedDatabaseDir, progress: (step) => console.log(step) });
    const inventory = await openInventory(cfg());
    try {
      const report = await initCa(cfg(), inventory, systemClock, "cli:init", opts.hierarchy);
      for (const line of report.lines) console.log(line);
      console.log(`root certificate: ${report.rootPemPath}`);
    } finally {
      await inventory.close();
    }
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

program
  .command("issue")
  .description("sign a PKCS#10 CSR under a profile, as the operator")
  .requiredOption("--csr <file>", "CSR file, PEM or DER")
  .option("--profile <name>", `one of ${PROFILE_NAMES.join(", ")}`, DEFAULT_PROFILE)
  .option("--ttl <seconds>", "lifetime in seconds", positiveInt("--ttl"))
  .option("--out <file>", "write the certificate (PEM) here instead of stdout")
  .option("--chain-out <file>", "write the chain (intermediate then root, PEM) here")
  .action(async (opts: { csr: string; profile: string; ttl?: number; out?: string; chainOut?: string }) => {
    if (!isProfileName(opts.profile)) throw new CaError("bad_request", `unknown profile '${opts.profile}'; use one of ${PROFILE_NAMES.join(", ")}`);
    const csrPath = fromCaller(opts.csr); // outside the try: a configuration problem is named as such
    let input: Buffer;
    try {
      input = readFileSync(csrPath);
    } catch (error) {
      throw new CaError("bad_request", `cannot read CSR file ${csrPath}`, { cause: error });
    }
    const csr = parseCsr(input);
    const ca = await openCa(cfg());
    try {
      const issued = await ca.authority.issue({ csr, profile: opts.profile, ttlSeconds: opts.ttl, requester: { kind: "operator", actor: operator() } });
      if (opts.out) writeFileSync(fromCaller(opts.out), issued.pem);
      else process.stdout.write(issued.pem);
      if (opts.chainOut) writeFileSync(fromCaller(opts.chainOut), issued.chain.join(""));
      console.error(`issued ${issued.serial} by ${issued.issuerId} (${issued.profile}), valid until ${issued.notAfter.toISOString()}`);
    } finally {
      await ca.close();
    }
  });

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
    const inventory = await openInventory(cfg());
    try {
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
    } finally {
      await inventory.close();
    }
  });

const issuers = program.command("issuers").description("root and intermediate CAs");
issuers
  .command("list")
  .description("every issuer with role, status and validity")
  .action(async () => {
    const inventory = await openInventory(cfg());
    try {
      for (const i of await inventory.issuers.list()) {
        console.log([i.id, i.role.padEnd(12), presentedIssuerStatus(i).padEnd(7), i.notAfter.toISOString(), i.keyAlgorithm, i.subject, i.keyUri].join("  "));
      }
    } finally {
      await inventory.close();
    }
  });

// Rotation and emergency revocation of intermediates. The root token's PIN
// (PKI_ROOT_PIN / PKI_ROOT_PIN_FILE) is needed for these ceremonies only.
issuers
  .command("rotate")
  .description("new intermediate key on the issuing token, signed by the root, staged, then active now or --at TIME; the previous one retires")
  .option("--hierarchy <name>", "which hierarchy", "default")
  .option("--at <time>", "activate at this time (RFC 3339) instead of now; the scheduler switches it", date)
  .action(async (opts: { hierarchy: string; at?: Date }) => {
    const inventory = await openInventory(cfg());
    try {
      const report = await rotateIntermediate(await ceremonyConfig(), inventory, systemClock, { hierarchy: opts.hierarchy, activateAt: opts.at, actor: operator() });
      for (const line of report.lines) console.log(line);
    } finally {
      await inventory.close();
    }
  });

issuers
  .command("activate <id>")
  .description("activate a staged intermediate now (the previous active one retires)")
  .action(async (id: string) => {
    const inventory = await openInventory(cfg());
    try {
      const { activated, retired } = await activateIntermediate(cfg(), inventory, id, new Date(), operator());
      console.log(`activated ${activated.id}`);
      for (const r of retired) console.log(`retired ${r.id}`);
    } finally {
      await inventory.close();
    }
  });

issuers
  .command("revoke <id>")
  .description("emergency: revoke an intermediate on its root's record, activate a replacement, list (and --reissue) its certificates")
  .option("--reason <reason>", "keyCompromise, cACompromise, superseded, cessationOfOperation, affiliationChanged or unspecified", "keyCompromise")
  .option("--reissue", "re-issue every unexpired certificate it signed from the new intermediate (same key and names)")
  .option("--json", "one JSON object per affected certificate")
  .action(async (id: string, opts: { reason: string; reissue?: boolean; json?: boolean }) => {
    const inventory = await openInventory(cfg());
    try {
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
      if (reissue && report.affected.length) {
        let ca: Awaited<ReturnType<typeof openCa>>;
        try {
          ca = await openCa(cfg(), systemClock, inventory);
        } catch (error) {
          await reissue.finishEarly(`not started: ${(error as Error).message}`);
          throw error;
        }
        try {
          const total = report.affected.length;
          let lastShown = 0;
          const result = await reissue.run({ authority: ca.authority, inventory, config: cfg() }, report.affected, (r) => {
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
    } finally {
      await inventory.close();
    }
  });

const scheduler = program.command("scheduler").description("the renewal, alert and issuer-lifecycle jobs");
scheduler
  .command("run-once <job>")
  .description("run one job now on this machine (it still takes the job's lease, so it never overlaps a running scheduler)")
  .action(async (job: string) => {
    const { createScheduler } = await import("@pki/jobs");
    const { createLogger } = await import("@pki/logger");
    const ca = await openCa(cfg());
    try {
      const runner = createScheduler({ runtime: ca, log: createLogger(cfg().logLevel, "scheduler"), runnerId: `${operator()}:${process.pid}` });
      const result = await runner.runNow(job, { actor: operator() });
      console.log(JSON.stringify({ job, outcome: result.outcome, counts: result.counts, ...(result.error ? { error: result.error } : {}) }));
      if (result.outcome !== "ok") process.exitCode = 1;
    } finally {
      await ca.close();
    }
  });
scheduler
  .command("status")
  .description("each job's next due time, lease, failures and last run, then the latest runs")
  .option("--runs <n>", "how many recent runs to show", positiveInt("--runs"), 20)
  .action(async (opts: { runs: number }) => {
    const { builtInJobs, schedulerStatus } = await import("@pki/jobs");
    const inventory = await openInventory(cfg());
    try {
      const status = await schedulerStatus(
        inventory,
        builtInJobs(cfg()).map((j) => j.name),
        opts.runs,
      );
      for (const j of status.jobs) {
        console.log(
          [
            j.job.padEnd(17),
            j.nextDueAt ? `next ${j.nextDueAt.toISOString()}` : "never registered",
            j.leaseHolder ? `running on ${j.leaseHolder} until ${j.leaseUntil?.toISOString()}` : "idle",
            j.lastRun ? `last ${j.lastRun.outcome} ${j.lastRun.startedAt.toISOString()}` : "never run",
            j.consecutiveFailures ? `${j.consecutiveFailures} failure(s) in a row` : "",
          ].join("  "),
        );
      }
      for (const r of status.runs) {
        console.log([r.startedAt.toISOString(), r.job.padEnd(17), r.outcome.padEnd(7), r.runner, JSON.stringify(r.counts ?? {}), r.error ?? ""].join("  "));
      }
    } finally {
      await inventory.close();
    }
  });

program
  .command("doctor")
  .description("the start-up checks (token keys match certificates, active intermediate valid), then live health: token signs, database and clock, CRLs fresh, scheduler jobs")
  .action(async () => {
    const { runDoctor } = await import("@pki/doctor");
    const ca = await openCa(cfg());
    try {
      const checks = await runDoctor(ca);
      for (const c of checks) console.log([c.status.padEnd(4), c.name, c.detail].join("  "));
      if (checks.some((c) => c.status === "fail")) process.exitCode = 1;
    } finally {
      await ca.close();
    }
  });

// Revocation: revoke a leaf, publish CRLs now, sign the root CRL in a ceremony.
certs
  .command("revoke <serial>")
  .description("revoke a certificate; OCSP and the CRLs follow within seconds wherever a publisher runs")
  .option("--reason <reason>", `one of ${Object.keys(REVOCATION_REASONS).join(", ")}`, "unspecified")
  .action(async (serial: string, opts: { reason: string }) => {
    const inventory = await openInventory(cfg());
    try {
      const revoked = await revokeCertificate({ inventory, events: new CaEvents(), clock: systemClock }, { serial, reason: opts.reason, actor: operator() });
      console.log(`revoked ${revoked.serial} (${REASON_NAMES[revoked.reason]}) at ${revoked.revokedAt.toISOString()}`);
      for (const successor of revoked.successorsRevoked ?? []) console.log(`revoked ${successor} (${REASON_NAMES[revoked.reason]}): a successor of ${revoked.serial}`);
    } finally {
      await inventory.close();
    }
  });

const crl = program.command("crl").description("certificate revocation lists");
crl
  .command("publish")
  .description("sign and publish full and delta CRLs now for every issuer this token serves (or one)")
  .option("--issuer <id>", "only this issuer")
  .action(async (opts: { issuer?: string }) => {
    const ca = await openCa(cfg());
    try {
      const publisher = new CrlPublisher({ inventory: ca.inventory, keyring: ca.keyring, config: ca.config, clock: ca.clock });
      for (const { issuerId, full, delta } of await publisher.publishNow(opts.issuer, { actor: operator() })) {
        console.log(`${issuerId}  full #${full.number} (${full.entries} entries, next update ${full.nextUpdate.toISOString()})  delta #${delta.number} (${delta.entries} entries)`);
      }
    } finally {
      await ca.close();
    }
  });
crl
  .command("sign-root")
  .description("ceremony: sign each root's CRL, and its OCSP answers about its intermediates, with the root key (needs the root token PIN)")
  .action(async () => {
    const inventory = await openInventory(cfg());
    try {
      const signed = await signRootCrls(await ceremonyConfig(), inventory, systemClock);
      if (signed.length === 0) console.log("no unexpired root to sign a CRL for");
      for (const s of signed)
        console.log(`${s.rootId}  root CRL #${s.meta.number} (${s.meta.entries} entries) and ${s.intermediateStatuses} intermediate OCSP response(s), next update ${s.meta.nextUpdate.toISOString()}`);
    } finally {
      await inventory.close();
    }
  });
crl
  .command("status")
  .description("published CRLs: number, entries, thisUpdate, nextUpdate per issuer")
  .action(async () => {
    const inventory = await openInventory(cfg());
    try {
      for (const state of await inventory.crls.states()) {
        for (const kind of ["full", "delta"] as const) {
          const meta = state[kind];
          if (meta) console.log([state.issuerId, kind.padEnd(5), `#${meta.number}`, `${meta.entries} entries`, meta.thisUpdate.toISOString(), meta.nextUpdate.toISOString()].join("  "));
        }
      }
    } finally {
      await inventory.close();
    }
  });

// Provisioners and certificate lookup, through the same core as the issuing API.
certs
  .command("show <serial>")
  .description("one certificate: status, revocation, names, lineage; --pem for the certificate itself")
  .option("--pem", "print only the certificate, PEM")
  .option("--json", "one JSON object")
  .action(async (typed: string, opts: { pem?: boolean; json?: boolean }) => {
    const serial = canonicalSerial(typed);
    if (serial === undefined) throw new CaError("bad_request", `'${typed}' is not a certificate serial (hex, plain or colon-separated)`);
    const inventory = await openInventory(cfg());
    try {
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
    } finally {
      await inventory.close();
    }
  });

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
    if (opts.type !== "token" && opts.type !== "acme") throw new CaError("bad_request", `--type must be token or acme, not '${opts.type}'`);
    const inventory = await openInventory(cfg());
    try {
      const { record, token } = await createProvisioner(
        { inventory, config: cfg() },
        { name, profiles: opts.profiles, names: opts.names, maxTtlSeconds: opts.maxTtl, hierarchy: opts.hierarchy, type: opts.type, eab: opts.eab === true },
        { actor: operator() },
      );
      if (opts.type === "acme") {
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
    } finally {
      await inventory.close();
    }
  });
provisioners
  .command("eab <name>")
  .description("create an external account binding key for an ACME provisioner; prints its kid and base64url HMAC key (shown once)")
  .action(async (name: string) => {
    const inventory = await openInventory(cfg());
    try {
      const { kid, hmacKey } = await createEabKey(inventory, name, { actor: operator() });
      console.log(`kid: ${kid}`);
      console.log(`hmac key: ${hmacKey}`);
      console.error(`e.g. certbot --eab-kid ${kid} --eab-hmac-key ${hmacKey}; lego --eab --kid ${kid} --hmac ${hmacKey}. The key is bound to the first account that uses it.`);
    } finally {
      await inventory.close();
    }
  });
provisioners
  .command("list")
  .description("every live provisioner (never their tokens)")
  .option("--all", "include removed ones")
  .option("--json", "one JSON object per line")
  .action(async (opts: { all?: boolean; json?: boolean }) => {
    const inventory = await openInventory(cfg());
    try {
      const acme = await inventory.acme.acmeProvisionerIds();
      for (const p of await inventory.provisioners.list({ includeRemoved: opts.all })) {
        const state = p.deletedAt ? "removed" : p.disabled ? "disabled" : "active";
        const type = acme.has(p.id) ? "acme" : "token";
        if (opts.json) console.log(JSON.stringify({ id: p.id, name: p.name, type, state, profiles: p.profiles, names: p.names, maxTtlSeconds: p.maxTtlSeconds, hierarchy: p.hierarchy }));
        else console.log([p.name.padEnd(16), state.padEnd(8), type.padEnd(5), p.profiles.join(","), `${p.maxTtlSeconds}s`, p.names.join(" ")].join("  "));
      }
    } finally {
      await inventory.close();
    }
  });
provisioners
  .command("update <name>")
  .description("change a provisioner's scope; applies to its next enrolment and to the next renewal of every certificate it enrolled")
  .option("--names <patterns...>", "replace the name patterns")
  .option("--profiles <profiles...>", "replace the profiles")
  .option("--max-ttl <seconds>", "new longest lifetime", positiveInt("--max-ttl"))
  .action(async (name: string, opts: { names?: string[]; profiles?: string[]; maxTtl?: number }) => {
    if (!opts.names && !opts.profiles && opts.maxTtl === undefined) throw new CaError("bad_request", "give at least one of --names, --profiles, --max-ttl");
    const inventory = await openInventory(cfg());
    try {
      const p = await updateProvisioner({ inventory, config: cfg() }, name, { names: opts.names, profiles: opts.profiles, maxTtlSeconds: opts.maxTtl }, { actor: operator() });
      console.log(`provisioner '${p.name}': profiles ${p.profiles.join(", ")}; names ${p.names.join(" ")}; max ${p.maxTtlSeconds} s`);
    } finally {
      await inventory.close();
    }
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
      const inventory = await openInventory(cfg());
      try {
        const audit = { actor: operator(), action: `provisioner.${command}` };
        const record = command === "remove" ? await inventory.provisioners.remove(name, new Date(), audit) : await inventory.provisioners.setDisabled(name, command === "disable", audit);
        if (!record) throw new CaError("not_found", `no provisioner named '${name}'`);
        console.log(`provisioner '${name}' ${command === "remove" ? "removed" : `${command}d`}`);
      } finally {
        await inventory.close();
      }
    });
}

// Named operator tokens (the console's Operators page does the same through @pki/policy).
const admins = program.command("admin").alias("admins").description("operators: their own admin tokens, for the API and the console");
admins
  .command("add <name>")
  .description("create an operator's admin token and print it (shown once, stored as SHA-256)")
  .option("--token-out <file>", "write the token to this file (mode 0600) instead of stdout")
  .action(async (name: string, opts: { tokenOut?: string }) => {
    assertAdminName(name);
    const inventory = await openInventory(cfg());
    try {
      const { token } = await addOperator(inventory, name, { actor: operator() });
      if (opts.tokenOut) writeSecretFile(opts.tokenOut, `${token}\n`);
      else console.log(token);
      console.error(`admin '${name}' added; the token is not stored and cannot be shown again. Its actions are audited as admin:${name}.`);
    } finally {
      await inventory.close();
    }
  });
admins
  .command("list")
  .description("every admin token ever made: name, created, revoked (never the tokens)")
  .option("--json", "one JSON object per line")
  .action(async (opts: { json?: boolean }) => {
    const inventory = await openInventory(cfg());
    try {
      for (const a of await listOperators(inventory)) {
        const view = { name: a.name, createdAt: a.createdAt.toISOString(), revokedAt: a.revokedAt?.toISOString() ?? null };
        if (opts.json) console.log(JSON.stringify(view));
        else console.log([a.name.padEnd(24), view.createdAt, view.revokedAt ? `revoked ${view.revokedAt}` : "live"].join("  "));
      }
    } finally {
      await inventory.close();
    }
  });
admins
  .command("remove <name>")
  .description("revoke an operator's admin token; their console sessions end at once")
  .action(async (name: string) => {
    assertAdminName(name);
    const inventory = await openInventory(cfg());
    try {
      const removed = await removeOperator(inventory, name, new Date(), { actor: operator() });
      console.log(`admin '${name}' removed; ${removed.sessionsEnded} console session(s) ended`);
    } finally {
      await inventory.close();
    }
  });

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
