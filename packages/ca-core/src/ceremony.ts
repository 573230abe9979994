import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import path from "node:path";
import type { Config, KeyAlgorithmName } from "@pki/config";
import { Pkcs11Module, Token, softhsmConfig, type Signer } from "@pki/hsm";
import type { Inventory, IssuerRecord } from "@pki/db";
import { assertLintClean } from "@pki/lint";
import { caCertificateFacts } from "./certificate-facts.ts";
import { buildName, buildTbs, caExtensions, newSerial, signCertificate, type RevocationUrls } from "./x509.ts";
import { serialize, toPem } from "./der.ts";
import { bindSigner, openToken } from "./keyring.ts";
import type { Clock } from "./clock.ts";
import { rootCrlsDue, signRootCrls } from "./crl/root.ts";

const DAY = 86_400_000;

export interface CeremonyReport {
  lines: string[];
  rootPemPath: string;
  adminTokenPath: string | undefined;
}

/** URLs written into CA and leaf certificates; one place so every certificate agrees. */
export function revocationUrls(publicUrl: string, issuerId: string): RevocationUrls {
  return {
    crl: `${publicUrl}/crl/${issuerId}.crl`,
    ocsp: `${publicUrl}/ocsp`,
    caIssuers: `${publicUrl}/ca/${issuerId}.crt`,
  };
}

/** Leaves also point at their issuer's delta CRL (Freshest CRL), published every minute or so. */
export function leafRevocationUrls(publicUrl: string, issuerId: string): RevocationUrls {
  return { ...revocationUrls(publicUrl, issuerId), deltaCrl: `${publicUrl}/crl/${issuerId}-delta.crl` };
}

function writeSecret(file: string, value: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

const isSoftHsm = (config: Config) => !!config.hsm.modulePath && /softhsm/i.test(config.hsm.modulePath);

/**
 * Makes sure the token exists. With SoftHSM (the quickstart), a missing token is created
 * with random PINs written to mode-0600 files in the data dir; with any other module the
 * token must have been initialised by its own tooling.
 */
function ensureToken(config: Config, which: "root" | "issuing", lines: string[]): void {
  const tokenConfig = config.hsm[which];
  if (!config.hsm.modulePath) throw new Error("no PKCS#11 module found: install softhsm2 or set PKCS11_MODULE");
  if (isSoftHsm(config) && config.hsm.softhsmConf.startsWith(config.dataDir)) softhsmConfig(config.dataDir);
  const module = Pkcs11Module.load(config.hsm.modulePath, { softhsmConf: config.hsm.softhsmConf });
  if (module.findToken(tokenConfig.label)) {
    lines.push(`token '${tokenConfig.label}' exists`);
    return;
  }
  if (!isSoftHsm(config)) throw new Error(`token '${tokenConfig.label}' not found in ${config.hsm.modulePath}; initialise it with the HSM's tooling first`);
  const generated = !tokenConfig.pin;
  const pin = tokenConfig.pin ?? randomBytes(16).toString("hex");
  const soPin = randomBytes(16).toString("hex");
  module.initToken(tokenConfig.label, soPin, pin);
  if (generated) {
    writeSecret(tokenConfig.pinFile, pin);
    tokenConfig.pin = pin;
  }
  writeSecret(path.join(config.dataDir, `${tokenConfig.label}.so-pin`), soPin);
  lines.push(`token '${tokenConfig.label}' created${generated ? ` (PIN in ${tokenConfig.pinFile})` : ""}`);
}

const stamp = (d: Date) => d.toISOString().slice(0, 10).replaceAll("-", "");

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
 * Generates the key on the token, builds and lints the CA certificate, records the intent
 * in the audit log, then has the parent (or the key itself, for a root) sign it.
 */
export async function createCaCertificate(
  inventory: Inventory,
  config: Config,
  plan: CaCertificatePlan,
  keyToken: Token,
  parent: { record: IssuerRecord; signer: Signer } | undefined,
  actor: string,
): Promise<IssuerRecord> {
  const key = await keyToken.generateKeyPair(plan.id, plan.keyAlgorithm);
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
      publicKeySpki: key.publicKeySpki,
      ...(plan.role === "intermediate" ? { pathLen: 0, issuer: issuerIdentity, urls: revocationUrls(config.publicUrl, parent!.record.id) } : {}),
    }),
  });
  assertLintClean(tbs, { kind: plan.role, ...(parentFacts ? { issuer: parentFacts } : {}) });
  await inventory.audit.record({ actor, action: "issuer.plan", target: plan.id, details: { role: plan.role, serial: serial.hex, keyUri: key.uri, tbsSha256: createHash("sha256").update(tbs).digest("hex") } });
  const der = await signCertificate(tbs, signingKey);
  const facts = caCertificateFacts(der);
  const record = await inventory.issuers.create({
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
  });
  await inventory.audit.record({ actor, action: "issuer.create", target: plan.id, details: { role: plan.role, serial: serial.hex, keyUri: key.uri, subject: facts.subject } });
  return record;
}

/**
 * The init ceremony: tokens, root and first intermediate, admin token. Idempotent: what
 * exists is reported and left alone.
 */
export async function initCa(config: Config, inventory: Inventory, clock: Clock, actor = "cli:init", hierarchy = "default"): Promise<CeremonyReport> {
  const lines: string[] = [];
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  ensureToken(config, "root", lines);
  if (config.hsm.issuing.label !== config.hsm.root.label) ensureToken(config, "issuing", lines);

  let root = await inventory.issuers.active(hierarchy, "root");
  let intermediate = await inventory.issuers.active(hierarchy, "intermediate");
  const now = clock.now();
  if (root) {
    lines.push(`root ${root.id} exists (${root.subject}, until ${root.notAfter.toISOString()})`);
  }
  if (!root || !intermediate) {
    const rootToken = openToken(config, "root");
    try {
      if (!root) {
        const prefix = hierarchy === "default" ? config.ca.name : `${config.ca.name} ${hierarchy}`;
        root = await createCaCertificate(
          inventory,
          config,
          {
            id: `${hierarchy}-root-${stamp(now)}-${randomBytes(2).toString("hex")}`,
            hierarchy,
            role: "root",
            commonName: `${prefix} Root CA`,
            keyAlgorithm: config.ca.rootKeyAlgorithm,
            notBefore: new Date(now.getTime() - config.ca.backdateSeconds * 1000),
            notAfter: new Date(now.getTime() + config.ca.rootTtlDays * DAY),
          },
          rootToken,
          undefined,
          actor,
        );
        lines.push(`root ${root.id} created (${root.subject}, ${root.keyAlgorithm}, key ${root.keyUri})`);
      }
      if (!intermediate) {
        intermediate = await createIntermediate(config, inventory, clock, root, rootToken, actor);
        lines.push(`intermediate ${intermediate.id} created (${intermediate.subject}, ${intermediate.keyAlgorithm}, key ${intermediate.keyUri})`);
      }
      // The root key is at hand only in ceremonies: sign the root's CRL while it is.
      for (const signed of await signRootCrls(config, inventory, clock, rootToken)) lines.push(`root CRL ${signed.rootId} #${signed.meta.number} signed, next update ${signed.meta.nextUpdate.toISOString()}`);
    } finally {
      rootToken.close();
    }
  } else {
    lines.push(`intermediate ${intermediate.id} exists (${intermediate.subject}, until ${intermediate.notAfter.toISOString()})`);
    if (config.hsm.root.pin && (await rootCrlsDue(config, inventory, clock)).length > 0) {
      for (const signed of await signRootCrls(config, inventory, clock)) lines.push(`root CRL ${signed.rootId} #${signed.meta.number} signed, next update ${signed.meta.nextUpdate.toISOString()}`);
    }
  }

  const rootPemPath = path.join(config.dataDir, "root.pem");
  const rootPem = toPem(root.certificateDer);
  writeFileSync(rootPemPath, rootPem, { mode: 0o644 });
  writeFileSync(path.join(config.dataDir, "chain.pem"), toPem(intermediate.certificateDer) + rootPem, { mode: 0o644 });

  let adminTokenPath: string | undefined = path.join(config.dataDir, "admin.token");
  if ((await inventory.admins.count()) === 0) {
    const token = config.bootstrapAdminToken ?? `pki_admin_${randomBytes(24).toString("base64url")}`;
    await inventory.admins.add("bootstrap", token);
    await inventory.audit.record({ actor, action: "admin.create", target: "bootstrap" });
    if (!config.bootstrapAdminToken) writeSecret(adminTokenPath, token);
    else adminTokenPath = undefined;
    lines.push(config.bootstrapAdminToken ? "admin token set from PKI_BOOTSTRAP_ADMIN_TOKEN" : `admin token written to ${adminTokenPath}`);
  } else {
    lines.push("admin token exists");
  }
  return { lines, rootPemPath, adminTokenPath };
}

/** A new intermediate under `root`, key generated on the issuing token. */
export async function createIntermediate(
  config: Config,
  inventory: Inventory,
  clock: Clock,
  root: IssuerRecord,
  rootToken: Token,
  actor: string,
  options: { status?: "staged" | "active" } = {},
): Promise<IssuerRecord> {
  const issuingToken = config.hsm.issuing.label === config.hsm.root.label ? rootToken : openToken(config, "issuing");
  try {
    const rootSigner = await bindSigner(rootToken, root);
    const now = clock.now();
    const notAfter = new Date(Math.min(now.getTime() + config.ca.intermediateTtlDays * DAY, root.notAfter.getTime()));
    const prefix = root.hierarchy === "default" ? config.ca.name : `${config.ca.name} ${root.hierarchy}`;
    return await createCaCertificate(
      inventory,
      config,
      {
        id: `${root.hierarchy}-int-${stamp(now)}-${randomBytes(2).toString("hex")}`,
        hierarchy: root.hierarchy,
        role: "intermediate",
        commonName: `${prefix} Issuing CA ${stamp(now)}`,
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
