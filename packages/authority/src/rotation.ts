// Operator rotation of intermediates: stage a new intermediate signed by the root,
// activate it now or at a given time, retire the previous one, expire retired ones once
// their last certificate has expired, and the emergency path for a compromised key.
// Every step leaves an audit event; the keyrings of running processes follow by reload().
import type { Config } from "@pki/config";
import { type Activation, type CertificateRecord, type Inventory, type IssuerRecord, REISSUE_FAILURES_KEPT } from "@pki/db";
import { type Authority, successorRequester } from "./authority.ts";
import type { Clock } from "./clock.ts";
import { createIntermediate, writeTrustFiles } from "./ceremony.ts";
import { isInternalCertificate } from "./internal-certificates.ts";
import { CaError, badRequest, notFound } from "./errors.ts";
import { openToken } from "./keyring.ts";
import { REASON_NAMES } from "./revocation.ts";
import { signRootCrls } from "./crl/root.ts";

export interface RotateParams {
  hierarchy?: string | undefined;
  /** activate at this time (the scheduler's issuer-lifecycle job does it); now when absent or past */
  activateAt?: Date | undefined;
  actor: string;
}

export interface RotationReport {
  staged: IssuerRecord;
  /** set when the new intermediate was activated at once */
  activation?: Activation;
  /** set when activation was scheduled */
  activateAt?: Date;
  lines: string[];
}

/**
 * The rotation ceremony. The root key signs the new intermediate (the root token's PIN
 * comes from PKI_ROOT_PIN / PKI_ROOT_PIN_FILE and is used for this ceremony only); the new
 * key is generated on the issuing token; the result is stored `staged`, then activated.
 */
export async function rotateIntermediate(config: Config, inventory: Inventory, clock: Clock, params: RotateParams): Promise<RotationReport> {
  const hierarchy = params.hierarchy ?? "default";
  const root = await inventory.issuers.active(hierarchy, "root");
  if (!root) throw notFound(`hierarchy '${hierarchy}' has no active root; create it with \`pki init --hierarchy ${hierarchy}\``);
  const now = clock.now();
  if (root.notAfter <= now) throw new CaError("conflict", `the root ${root.id} of hierarchy '${hierarchy}' has expired; a new root needs a new init ceremony`);
  const lines: string[] = [];
  await inventory.audit.record({ actor: params.actor, action: "issuer.rotate.begin", target: root.id, details: { hierarchy, activateAt: params.activateAt?.toISOString() ?? "now" } });
  let staged: IssuerRecord;
  const rootToken = openToken(config, "root");
  try {
    staged = await createIntermediate(config, inventory, clock, root, rootToken, params.actor, { status: "staged" });
    // The root key is at hand: sign its OCSP answer about the new intermediate (with its CRL).
    await signRootCrls(config, inventory, clock, rootToken).catch((error: Error) => lines.push(`root CRL and OCSP not re-signed (${error.message}); run \`pki crl sign-root\``));
  } catch (error) {
    await inventory.audit.record({ actor: params.actor, action: "issuer.rotate.begin", target: root.id, outcome: "error", details: { reason: (error as Error).message } }).catch(() => {});
    throw error;
  } finally {
    rootToken.close();
  }
  await inventory.audit.record({ actor: params.actor, action: "issuer.stage", target: staged.id, details: { hierarchy, parent: root.id, notAfter: staged.notAfter.toISOString() } });
  lines.push(`staged ${staged.id} (${staged.subject}, ${staged.keyAlgorithm}, key ${staged.keyUri}, until ${staged.notAfter.toISOString()})`);
  if (params.activateAt && params.activateAt > now) {
    await inventory.issuerLifecycle.scheduleActivation(staged.id, params.activateAt, params.actor);
    // intermediates.pem lists staged intermediates too: relying parties have it before it signs.
    await writeTrustFiles(config, inventory, hierarchy, now);
    lines.push(`${staged.id} becomes active at ${params.activateAt.toISOString()} (the scheduler's issuer-lifecycle job switches it)`);
    return { staged, activateAt: params.activateAt, lines };
  }
  const activation = await activateIntermediate(config, inventory, staged.id, now, params.actor);
  lines.push(`activated ${activation.activated.id}`);
  for (const r of activation.retired) lines.push(`retired ${r.id} (signs nothing new; keeps CRL and OCSP until its last certificate expires, ${r.notAfter.toISOString()} at the latest)`);
  return { staged: activation.activated, activation, lines };
}

/**
 * Makes a staged intermediate the active one (the previous one retires) and rewrites the
 * hierarchy's chain.pem, so the files users verify with follow every switch at once.
 */
export async function activateIntermediate(config: Config, inventory: Inventory, issuerId: string, at: Date, actor: string): Promise<Activation> {
  const activation = await inventory.issuerLifecycle.activate(issuerId, at, actor).catch((error: Error) => {
    throw new CaError("conflict", error.message, { cause: error });
  });
  await writeTrustFiles(config, inventory, activation.activated.hierarchy, at);
  return activation;
}

/** Activates staged intermediates whose time has come; what the issuer-lifecycle job runs. */
export async function activateDueIntermediates(config: Config, inventory: Inventory, clock: Clock, actor: string): Promise<Activation[]> {
  const done: Activation[] = [];
  for (const staged of await inventory.issuerLifecycle.dueActivations(clock.now())) {
    done.push(await activateIntermediate(config, inventory, staged.id, clock.now(), actor));
  }
  return done;
}

/** Retired intermediates with no unexpired certificate left become `expired`. */
export async function expireRetiredIntermediates(inventory: Inventory, clock: Clock, actor: string): Promise<IssuerRecord[]> {
  return inventory.issuerLifecycle.expireRetired(clock.now(), actor);
}

/** What operators see: a revoked CA certificate says so, whatever its lifecycle status. */
export function presentedIssuerStatus(issuer: { status: string; revokedAt: Date | null }): string {
  return issuer.revokedAt ? "revoked" : issuer.status;
}

/** RFC 5280 reasons that make sense for a CA certificate. */
const ISSUER_REVOCATION_REASONS: Record<string, number> = { unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5 };

export interface IssuerRevocationReport {
  revoked: IssuerRecord;
  /** the intermediate that took over, when the revoked one was active */
  replacement?: IssuerRecord;
  /** unexpired valid certificates that chained to the revoked intermediate */
  affected: CertificateRecord[];
  lines: string[];
}

/**
 * Emergency rotation. If the compromised intermediate is the active one, a replacement is
 * activated first (a staged one if there is one, otherwise a new one from the root), so
 * issuance never stops; then the intermediate is recorded as revoked on its root's record
 * (the root CRL lists it) and retired. The certificates it signed are returned so the
 * operator can re-issue them (reissueCertificates).
 */
export async function revokeIntermediate(
  config: Config,
  inventory: Inventory,
  clock: Clock,
  params: { issuerId: string; reason?: string | undefined; actor: string },
): Promise<IssuerRevocationReport> {
  const reasonName = params.reason ?? "keyCompromise";
  const reason = ISSUER_REVOCATION_REASONS[reasonName];
  if (reason === undefined) throw badRequest(`unknown reason '${reasonName}' for a CA certificate; use one of ${Object.keys(ISSUER_REVOCATION_REASONS).join(", ")}`);
  const issuer = await inventory.issuers.get(params.issuerId);
  if (!issuer) throw notFound(`no issuer ${params.issuerId}`);
  if (issuer.role !== "intermediate") throw badRequest(`${issuer.id} is a root; roots are not revoked, they are removed from trust stores`);
  const lines: string[] = [];
  if (issuer.revokedAt) {
    // A re-run (say after a re-issue that failed half way) picks up where the first run
    // stopped: the revocation stands, and only what still needs a successor is listed.
    lines.push(`${issuer.id} is already revoked (${REASON_NAMES[issuer.revocationReason ?? 0]}, at ${issuer.revokedAt.toISOString()}); listing what still needs re-issuing`);
    const affected = await stillToReissue(inventory, issuer.id, clock);
    lines.push(`${affected.length} unexpired certificate(s) chained to ${issuer.id} without a successor`);
    return { revoked: issuer, affected, lines };
  }
  let replacement: IssuerRecord | undefined;
  if (issuer.status === "active") {
    const staged = (await inventory.issuerLifecycle.staged(issuer.hierarchy)).find((s) => s.notAfter > clock.now());
    if (staged) {
      replacement = (await activateIntermediate(config, inventory, staged.id, clock.now(), params.actor)).activated;
      lines.push(`activated the staged ${replacement.id} in place of ${issuer.id}`);
    } else {
      const rotation = await rotateIntermediate(config, inventory, clock, { hierarchy: issuer.hierarchy, actor: params.actor });
      replacement = rotation.staged;
      lines.push(...rotation.lines);
    }
  }
  const at = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
  const revoked = await inventory.issuerLifecycle.revoke(issuer.id, reason, at, params.actor);
  lines.push(`revoked ${issuer.id} (${reasonName}) at ${at.toISOString()}`);
  // The root PIN is at hand in this ceremony: publish the root CRL listing the revocation now
  // rather than at the next scheduled root CRL signing.
  for (const signed of await signRootCrls(config, inventory, clock)) {
    if (signed.rootId === issuer.parentId)
      lines.push(`root CRL of ${signed.rootId} #${signed.meta.number} signed with ${signed.meta.entries} revoked intermediate(s), next update ${signed.meta.nextUpdate.toISOString()}`);
  }
  const affected = await stillToReissue(inventory, issuer.id, clock);
  lines.push(`${affected.length} unexpired certificate(s) chained to ${issuer.id}`);
  // The revoked intermediate stays in intermediates.pem (paths through it fail on the revocation); the replacement joins it.
  await writeTrustFiles(config, inventory, issuer.hierarchy, clock.now());
  return { revoked, ...(replacement ? { replacement } : {}), affected, lines };
}

/**
 * Services' certificates under `issuerId` that are valid, unexpired and not yet succeeded.
 * The CA's own certificates are left out: the publisher gives the replacement its own OCSP
 * responder certificate, and the API renews its listener certificate when its issuer is
 * revoked.
 */
async function stillToReissue(inventory: Inventory, issuerId: string, clock: Clock): Promise<CertificateRecord[]> {
  const chained = await inventory.certificateScans.chainedTo(issuerId, clock.now());
  return chained.filter((record) => !isInternalCertificate(record) && !record.successorSerial);
}

/** Re-issues in flight at once: enough to keep the token's session pool and the database busy. */
export const REISSUE_CONCURRENCY = 32;
/** Failures kept with their message (as many as the inventory keeps of a run); past that only the count grows. */
export { REISSUE_FAILURES_KEPT };

/** How long a run reuses an issuer's or provisioner's lookup: a provisioner disabled meanwhile stops renewing within this. */
const REQUESTER_REUSE_MS = 1_000;

/**
 * successorRequester for a run over many certificates: one lookup per issuer or provisioner
 * a second, shared by the certificates in flight, instead of a database round trip per
 * certificate (a run is mostly one issuer's certificates). A failed lookup is not shared:
 * each certificate then looks up on its own, so its refusal names it.
 */
function sharedRequesters(): typeof successorRequester {
  const recent = new Map<string, { at: number; requester: ReturnType<typeof successorRequester> }>();
  return (inventory, record, actor) => {
    const key = record.provisionerId ? `provisioner ${record.provisionerId}` : `issuer ${record.issuerId}`;
    const shared = recent.get(key);
    if (shared && performance.now() - shared.at < REQUESTER_REUSE_MS) return shared.requester.catch(() => successorRequester(inventory, record, actor));
    const requester = successorRequester(inventory, record, actor);
    recent.set(key, { at: performance.now(), requester });
    requester.catch(() => recent.get(key)?.requester === requester && recent.delete(key));
    return requester;
  };
}

export interface ReissueResult {
  reissued: { from: string; to: string }[];
  /** the first REISSUE_FAILURES_KEPT failures (or options.maxFailuresKept) */
  failed: { serial: string; error: string }[];
  /** every failure, kept or not */
  failedCount: number;
}

/**
 * Re-issues each certificate, `concurrency` at a time, each through the whole issuance
 * pipeline (policy, lint, intent, store, token). Failures are reported per serial and
 * never stop the rest. `onProgress` sees the result so far after every certificate. Once
 * `signal` aborts, no further certificate is started (those in flight finish).
 */
export async function reissueCertificates(
  deps: { authority: Authority; inventory: Inventory; config: Config },
  records: CertificateRecord[],
  actor: string,
  options: { concurrency?: number; maxFailuresKept?: number; onProgress?: (result: Readonly<ReissueResult>) => void; signal?: AbortSignal } = {},
): Promise<ReissueResult> {
  const result: ReissueResult = { reissued: [], failed: [], failedCount: 0 };
  const maxFailuresKept = options.maxFailuresKept ?? REISSUE_FAILURES_KEPT;
  const requesterOf = sharedRequesters();
  let next = 0;
  const worker = async () => {
    while (next < records.length && !options.signal?.aborted) {
      const record = records[next++]!;
      try {
        const issued = await deps.authority.renew({ predecessor: record, requester: await requesterOf(deps.inventory, record, actor) });
        result.reissued.push({ from: record.serial, to: issued.serial });
      } catch (error) {
        result.failedCount++;
        if (result.failed.length < maxFailuresKept) result.failed.push({ serial: record.serial, error: (error as Error).message });
      }
      options.onProgress?.(result);
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? REISSUE_CONCURRENCY, records.length));
  await Promise.all(Array.from({ length: concurrency }, worker));
  return result;
}
