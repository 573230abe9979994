import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { Config, KeyAlgorithmName } from "@pki/config";
import { type KeyManager, Pkcs11KeyBackend, type Signer, softhsmConfig } from "@pki/hsm";
import type { Inventory, IssuerRecord } from "@pki/db";
import { assertLintClean } from "@pki/lint";
import { PROFILES, buildName, buildTbs, caCertificateFacts, caExtensions, newSerial, revocationUrls, serialize, signCertificate, toPem } from "@pki/x509";
import { bindSigner, openToken } from "./keyring.ts";
import type { Clock } from "./clock.ts";
import { rootCrlsDue, signRootCrls } from "./crl/root.ts";
import { badRequest } from "./errors.ts";
import { writeFileAtomically, writeSecretFile } from "./secret-file.ts";

const DAY = 86_400_000;

/** The operator name the first admin token gets (from PKI_BOOTSTRAP_ADMIN_TOKEN or admin.token). */
const BOOTSTRAP_ADMIN = "bootstrap";

export interface CeremonyReport {
  lines: string[];
  rootPemPath: string;
  adminTokenPath: string | undefined;
}

const writeSecret = (file: string, value: string) => writeSecretFile(file, `${value}\n`);

const isSoftHsm = (config: Config) => !!config.hsm.modulePath && /softhsm/i.test(config.hsm.modulePath);

/**
 * Makes sure the token exists, through the key backend. With SoftHSM (the quickstart), a
 * missing token is created with random PINs written to mode-0600 files in the data dir;
 * with any other module the token must have been initialised by its own tooling.
 */
async function ensureToken(config: Config, which: "root" | "issuing", say: (line: string) => void): Promise<void> {
  const tokenConfig = config.hsm[which];
  if (!config.hsm.modulePath) throw new Error("no PKCS#11 module found: install softhsm2 or set PKCS11_MODULE");
  if (isSoftHsm(config) && config.hsm.softhsmConf.startsWith(config.dataDir)) softhsmConfig(config.dataDir);
  const backend = new Pkcs11KeyBackend({ modulePath: config.hsm.modulePath, softhsmConf: config.hsm.softhsmConf, mayInitialiseTokens: isSoftHsm(config) });
  const provisioned = await backend.provision({ label: tokenConfig.label, ...(tokenConfig.pin ? { pin: tokenConfig.pin } : {}) });
  if (!provisioned.created) {
    say(`token '${tokenConfig.label}' exists`);
    return;
  }
  if (provisioned.generatedPin) {
    writeSecret(tokenConfig.pinFile, provisioned.generatedPin);
    tokenConfig.pin = provisioned.generatedPin;
  }
  if (provisioned.soPin) writeSecret(path.join(config.dataDir, `${tokenConfig.label}.so-pin`), provisioned.soPin);
  say(`token '${tokenConfig.label}' created${provisioned.generatedPin ? ` (PIN in ${tokenConfig.pinFile})` : ""}`);
}

/**
 * `<date>-<random>`: one per CA certificate, in its issuer ID and its CN alike. Every CA
 * certificate thus has a subject of its own, so a relying party that matches CRLs to
 * issuers by name (RFC 5280 §6.3.3) can never take one intermediate's CRL for another's,
 * even for two rotations on the same day. The ID is the inventory's primary key, so a
 * repeated suffix fails the insert rather than reusing a name.
 */
const uniqueSuffix = (d: Date) => `${d.toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(4).toString("hex")}`;

const hierarchyPrefix = (config: Config, hierarchy: string) => (hierarchy === "default" ? config.ca.name : `${config.ca.name} ${hierarchy}`);

/** Hierarchy names become file names (root-NAME.pem) and URL-free labels: keep them plain. */
export function assertHierarchyName(hierarchy: string): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(hierarchy)) throw badRequest(`hierarchy name '${hierarchy.slice(0, 32)}' must be up to 32 lower-case letters, digits and dashes, starting with a letter`);
}

/** Where a hierarchy's trust files live: the default one keeps the README's root.pem, chain.pem and intermediates.pem. */
export function trustFilePaths(config: Config, hierarchy: string): { root: string; chain: string; intermediates: string } {
  const suffix = hierarchy === "default" ? "" : `-${hierarchy}`;
  return {
    root: path.join(config.dataDir, `root${suffix}.pem`),
    chain: path.join(config.dataDir, `chain${suffix}.pem`),
    intermediates: path.join(config.dataDir, `intermediates${suffix}.pem`),
  };
}

/**
 * Every intermediate of the hierarchy whose certificate has not expired, newest first:
 * staged, active, retired and revoked alike. A certificate issued before a rotation still
 * chains through its retired intermediate; a revoked one stays in so that a path through it
 * is refused for the revocation (by a verifier that checks CRLs or OCSP) rather than for a
 * missing link, which would hide why.
 */
export function unexpiredIntermediates(issuers: IssuerRecord[], hierarchy: string, now: Date): IssuerRecord[] {
  return issuers.filter((i) => i.role === "intermediate" && i.hierarchy === hierarchy && i.notAfter > now).sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime() || a.id.localeCompare(b.id));
}

/**
 * Writes `content` unless the file already holds exactly that (a restart touches nothing).
 * The new content goes to a temporary file renamed over the old one, so a reader never
 * sees half a bundle.
 */
function writeIfChanged(file: string, content: string): void {
  if (existsSync(file) && readFileSync(file, "utf8") === content) return;
  writeFileAtomically(file, content, 0o644);
}

/**
 * Brings a hierarchy's root.pem, chain.pem (the active intermediate, then the root) and
 * intermediates.pem (unexpiredIntermediates) in line with the inventory. Run after every
 * change of the active intermediate or of the set of unexpired intermediates, in whatever
 * process made it, so the files a user hands out always verify what the CA issued.
 */
export async function writeTrustFiles(config: Config, inventory: Inventory, hierarchy: string, now: Date = new Date()): Promise<{ root: string; chain: string; intermediates: string } | undefined> {
  const root = await inventory.issuers.active(hierarchy, "root");
  const intermediate = await inventory.issuers.active(hierarchy, "intermediate");
  if (!root || !intermediate || !existsSync(config.dataDir)) return undefined;
  const files = trustFilePaths(config, hierarchy);
  const rootPem = toPem(root.certificateDer);
  writeIfChanged(files.root, rootPem);
  writeIfChanged(files.chain, toPem(intermediate.certificateDer) + rootPem);
  writeIfChanged(
    files.intermediates,
    unexpiredIntermediates(await inventory.issuers.list(), hierarchy, now)
      .map((i) => toPem(i.certificateDer))
      .join(""),
  );
  return files;
}

/** writeTrustFiles for every hierarchy with an active root (the scheduler's issuer-lifecycle job: intermediates expire by the clock). */
export async function writeAllTrustFiles(config: Config, inventory: Inventory, now: Date): Promise<void> {
  const hierarchies = new Set((await inventory.issuers.list()).filter((i) => i.role === "root").map((i) => i.hierarchy));
  for (const hierarchy of hierarchies) await writeTrustFiles(config, inventory, hierarchy, now);
}

export interface CaCertificatePlan {
  id: string;
  hierarchy: string;
  role: "root" | "intermediate";
  commonName: string;
  keyAlgorithm: KeyAlgorithmName;
  notBefore: Date;
  notAfter: Date;
  /** "staged" for a rotation: created now, activated later (rotation.ts); default "active" */
  status?: "staged" | "active";
}

/**
 * A CA certificate through the same steps as every other: key generated on the token,
 * built from the root or intermediate profile, linted, intent recorded in the inventory,
 * signed by the parent (or the key itself, for a root), stored with its audit event.
 */
export async function createCaCertificate(
  inventory: Inventory,
  config: Config,
  plan: CaCertificatePlan,
  keyToken: KeyManager,
  parent: { record: IssuerRecord; signer: Signer } | undefined,
  actor: string,
): Promise<IssuerRecord> {
  const key = await keyToken.generateKey(plan.id, plan.keyAlgorithm);
  const signingKey = parent ? parent.signer : await keyToken.signer(key.uri);
  const parentFacts = parent ? caCertificateFacts(parent.record.certificateDer) : undefined;
  const subject = buildName({ commonName: plan.commonName, organization: config.ca.organization });
  const subjectDer = serialize(subject);
  const issuerIdentity = parentFacts
    ? { subjectDer: parentFacts.subjectDer, subjectKeyId: parentFacts.subjectKeyId, keyAlgorithm: parentFacts.keyAlgorithm }
    : { subjectDer, subjectKeyId: Buffer.alloc(0), keyAlgorithm: key.algorithm };
  const serial = newSerial();
  const tbs = buildTbs({
    serial: serial.bytes,
    issuer: issuerIdentity,
    subject,
    publicKeySpki: key.publicKeySpki,
    notBefore: plan.notBefore,
    notAfter: plan.notAfter,
    extensions: caExtensions({
      profile: PROFILES[plan.role],
      publicKeySpki: key.publicKeySpki,
      keyAlgorithm: key.algorithm,
      ...(plan.role === "intermediate" ? { issuer: issuerIdentity, urls: revocationUrls(config.publicUrl, parent!.record.id) } : {}),
    }),
  });
  assertLintClean(tbs, { kind: plan.role, ...(parentFacts ? { issuer: parentFacts } : {}) });
  await inventory.issuers.recordIntent(
    { id: plan.id, hierarchy: plan.hierarchy, role: plan.role, parentId: parent?.record.id ?? null, serial: serial.hex, keyUri: key.uri, tbsDer: tbs },
    { actor, action: "issuer.plan", target: plan.id, details: { role: plan.role, serial: serial.hex, keyUri: key.uri, tbsSha256: createHash("sha256").update(tbs).digest("hex") } },
  );
  let der: Buffer;
  try {
    der = await signCertificate(tbs, signingKey);
  } catch (error) {
    await inventory.issuers.markIntentFailed(plan.id, { actor, action: "issuer.create", target: plan.id, details: { reason: (error as Error).message } }).catch(() => {}); // the reconcile-intents job closes an intent we could not mark
    throw error;
  }
  const facts = caCertificateFacts(der);
  const record = await inventory.issuers.create(
    {
      id: plan.id,
      hierarchy: plan.hierarchy,
      role: plan.role,
      status: plan.status ?? "active",
      parentId: parent?.record.id ?? null,
      subject: facts.subject,
      serial: serial.hex,
      keyUri: key.uri,
      keyAlgorithm: key.algorithm,
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
      certificateDer: der,
      activatedAt: plan.status === "staged" ? null : new Date(),
    },
    { actor, action: "issuer.create", target: plan.id, details: { role: plan.role, serial: serial.hex, keyUri: key.uri, subject: facts.subject } },
  );
  return record;
}

/**
 * The init ceremony: tokens, root and first intermediate, admin token. Idempotent: what
 * exists is reported and left alone.
 */
export async function initCa(config: Config, inventory: Inventory, clock: Clock, actor = "cli:init", hierarchy = "default", progress: (line: string) => void = () => {}): Promise<CeremonyReport> {
  assertHierarchyName(hierarchy);
  // Each line is told to `progress` the moment it is known: a first start takes seconds.
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    progress(line);
  };
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  await ensureToken(config, "root", say);
  if (config.hsm.issuing.label !== config.hsm.root.label) await ensureToken(config, "issuing", say);

  let root = await inventory.issuers.active(hierarchy, "root");
  let intermediate = await inventory.issuers.active(hierarchy, "intermediate");
  const now = clock.now();
  if (root) {
    say(`root ${root.id} exists (${root.subject}, until ${root.notAfter.toISOString()})`);
  }
  if (!root || !intermediate) {
    const rootToken = openToken(config, "root");
    try {
      if (!root) {
        const suffix = uniqueSuffix(now);
        root = await createCaCertificate(
          inventory,
          config,
          {
            id: `${hierarchy}-root-${suffix}`,
            hierarchy,
            role: "root",
            commonName: `${hierarchyPrefix(config, hierarchy)} Root CA ${suffix}`,
            keyAlgorithm: config.ca.rootKeyAlgorithm,
            notBefore: new Date(now.getTime() - config.ca.backdateSeconds * 1000),
            notAfter: new Date(now.getTime() + config.ca.rootTtlDays * DAY),
          },
          rootToken,
          undefined,
          actor,
        );
        say(`root ${root.id} created (${root.subject}, ${root.keyAlgorithm}, key ${root.keyUri})`);
      }
      if (!intermediate) {
        intermediate = await createIntermediate(config, inventory, clock, root, rootToken, actor);
        say(`intermediate ${intermediate.id} created (${intermediate.subject}, ${intermediate.keyAlgorithm}, key ${intermediate.keyUri})`);
      }
      // The root key is at hand only in ceremonies: sign the root's CRL while it is.
      for (const signed of await signRootCrls(config, inventory, clock, rootToken)) say(`root CRL ${signed.rootId} #${signed.meta.number} signed, next update ${signed.meta.nextUpdate.toISOString()}`);
    } finally {
      rootToken.close();
    }
  } else {
    say(`intermediate ${intermediate.id} exists (${intermediate.subject}, until ${intermediate.notAfter.toISOString()})`);
    if (config.hsm.root.pin && (await rootCrlsDue(config, inventory, clock)).length > 0) {
      for (const signed of await signRootCrls(config, inventory, clock)) say(`root CRL ${signed.rootId} #${signed.meta.number} signed, next update ${signed.meta.nextUpdate.toISOString()}`);
    }
  }

  const rootPemPath = (await writeTrustFiles(config, inventory, hierarchy, clock.now()))?.root ?? trustFilePaths(config, hierarchy).root;

  let adminTokenPath: string | undefined = path.join(config.dataDir, "admin.token");
  if ((await inventory.admins.count()) === 0) {
    const token = config.bootstrapAdminToken ?? `pki_admin_${randomBytes(24).toString("base64url")}`;
    await inventory.admins.add(BOOTSTRAP_ADMIN, token);
    await inventory.audit.record({ actor, action: "admin.create", target: BOOTSTRAP_ADMIN });
    if (!config.bootstrapAdminToken) writeSecret(adminTokenPath, token);
    else adminTokenPath = undefined;
    say(config.bootstrapAdminToken ? "admin token set from PKI_BOOTSTRAP_ADMIN_TOKEN" : `admin token written to ${adminTokenPath}`);
  } else if (config.bootstrapAdminToken) {
    adminTokenPath = undefined;
    say(await followBootstrapToken(config, inventory, clock, actor));
  } else {
    say("admin token exists");
  }
  return { lines, rootPemPath, adminTokenPath };
}

/**
 * PKI_BOOTSTRAP_ADMIN_TOKEN is where the operator keeps the bootstrap admin's token, so a
 * changed value is a rotation: the new token replaces the old one, which stops working
 * (with the bootstrap admin's console sessions), audited as admin.rotate. Whoever sets
 * the server's environment holds its PINs anyway, so this grants nothing new. An
 * admin.token file the CA wrote for the old token is removed, as it no longer works.
 */
async function followBootstrapToken(config: Config, inventory: Inventory, clock: Clock, actor: string): Promise<string> {
  const token = config.bootstrapAdminToken;
  if (!token) return "admin token exists";
  const outcome = await inventory.admins.replace(BOOTSTRAP_ADMIN, token, clock.now(), { actor, reason: "PKI_BOOTSTRAP_ADMIN_TOKEN changed" });
  if (outcome === "absent") return `the '${BOOTSTRAP_ADMIN}' admin was removed, so PKI_BOOTSTRAP_ADMIN_TOKEN is not used (unset it, or add an operator with pki admin add)`;
  if (outcome === "unchanged") return "admin token exists (PKI_BOOTSTRAP_ADMIN_TOKEN)";
  if (outcome === "taken") throw new Error("PKI_BOOTSTRAP_ADMIN_TOKEN is a token this CA already has or once revoked; a revoked token is never revived: make a new one with 'openssl rand -base64 32'");
  const staleFile = path.join(config.dataDir, "admin.token");
  if (existsSync(staleFile)) rmSync(staleFile, { force: true });
  return `the '${BOOTSTRAP_ADMIN}' admin token was replaced by the new PKI_BOOTSTRAP_ADMIN_TOKEN; the old one no longer works`;
}

/** A new intermediate under `root`, key generated on the issuing token. */
export async function createIntermediate(
  config: Config,
  inventory: Inventory,
  clock: Clock,
  root: IssuerRecord,
  rootToken: KeyManager,
  actor: string,
  options: { status?: "staged" | "active" } = {},
): Promise<IssuerRecord> {
  const issuingToken = config.hsm.issuing.label === config.hsm.root.label ? rootToken : openToken(config, "issuing");
  try {
    const rootSigner = await bindSigner(rootToken, root);
    const now = clock.now();
    const notAfter = new Date(Math.min(now.getTime() + config.ca.intermediateTtlDays * DAY, root.notAfter.getTime()));
    const suffix = uniqueSuffix(now);
    return await createCaCertificate(
      inventory,
      config,
      {
        id: `${root.hierarchy}-int-${suffix}`,
        hierarchy: root.hierarchy,
        role: "intermediate",
        commonName: `${hierarchyPrefix(config, root.hierarchy)} Issuing CA ${suffix}`,
        keyAlgorithm: config.ca.issuingKeyAlgorithm,
        notBefore: new Date(now.getTime() - config.ca.backdateSeconds * 1000),
        notAfter,
        ...(options.status ? { status: options.status } : {}),
      },
      issuingToken,
      { record: root, signer: rootSigner.signer },
      actor,
    );
  } finally {
    if (issuingToken !== rootToken) issuingToken.close();
  }
}
