import type { Config } from "@pki/config";
import { type Inventory, type ProvisionerRecord, DuplicateSerialError, IssuerNotActiveError, SuccessorExistsError } from "@pki/db";
import { assertLintClean } from "@pki/lint";
import { certificatesIssued } from "@pki/metrics";
import { ProvisionerPolicy } from "@pki/policy";
import {
  type CertificateProfileName,
  type CsrProposal,
  type KeyAlgorithm,
  type LeafTemplate,
  type Profile,
  type ProfileName,
  type San,
  CaError,
  MIN_TTL_SECONDS,
  OID,
  PROFILES,
  encodeLeafTbs,
  formatSan,
  leafRevocationUrls,
  leafTemplate,
  namesOf,
  newSerial,
  signCertificate,
  toPem,
} from "@pki/x509";
import type { Clock } from "./clock.ts";
import { badRequest, conflict, forbidden, inventoryFailure, unavailable } from "./errors.ts";
import type { CaEvents } from "./events.ts";
import type { Keyring, ServingIssuer } from "./keyring.ts";
import { type Predecessor, successorLifetimeSeconds, successorProfile, successorProposal } from "./renewal.ts";

/**
 * Who is asking. The authority derives what they may have from this alone: a
 * provisioner's stored policy (names, profiles, lifetime), or an operator's full scope.
 * Front ends say who authenticated; they never carry or apply policy themselves.
 */
export type Requester =
  | {
      kind: "provisioner";
      /** for the audit log, e.g. "provisioner:<name>", "mtls:<serial>", "acme:<provisioner>/<account>" */
      actor: string;
      provisioner: ProvisionerRecord;
      sourceIp?: string | undefined;
    }
  | {
      /** an admin, the CLI, or the CA's own jobs acting for an operator-issued certificate */
      kind: "operator";
      actor: string;
      hierarchy?: string | undefined;
      sourceIp?: string | undefined;
    };

export interface IssueRequest {
  csr: CsrProposal;
  profile: ProfileName;
  ttlSeconds?: number | undefined;
  autoRenew?: boolean | undefined;
  requester: Requester;
  /** set on renewal: the certificate this one replaces */
  predecessorSerial?: string | undefined;
}

/** The successor of a stored certificate: its names, profile and lifetime, a new key only from `csr`. */
export interface RenewRequest {
  predecessor: Predecessor;
  /** who asks now (successorRequester): the enrolling provisioner's current policy applies */
  requester: Requester;
  /** a CSR for a new key; its names must be the predecessor's */
  csr?: CsrProposal | undefined;
}

/** A certificate for one of the CA's own services (its delegated OCSP responders). */
export interface OwnCertificateRequest {
  profile: Exclude<CertificateProfileName, ProfileName | "intermediate" | "root">;
  issuer: ServingIssuer;
  publicKeySpki: Buffer;
  keyAlgorithm: KeyAlgorithm;
  commonName: string;
  sans: San[];
  ttlSeconds: number;
  actor: string;
  /** the audit action and details the stored certificate is recorded under */
  audit: { action: string; details: Record<string, unknown> };
}

export interface IssuedCertificate {
  serial: string;
  der: Buffer;
  pem: string;
  /** PEM: the issuing intermediate, then up to the root */
  chain: string[];
  issuerId: string;
  profile: CertificateProfileName;
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
}

/** What the pipeline has decided before anything is recorded: exactly the bytes the token will sign. */
interface Plan {
  serial: string;
  tbsDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  sans: string[];
}

/** Everything the record step needs beyond the plan. */
interface Intent {
  profile: CertificateProfileName;
  keyAlgorithm: KeyAlgorithm;
  publicKeySpki: Buffer;
  requester: string;
  provisionerId?: string | undefined;
  autoRenew: boolean;
  predecessorSerial?: string | undefined;
  /** services' certificates only under the active issuer; the CA's own under any it serves */
  onlyFromActiveIssuer: boolean;
}

const SINGLE_LABEL = /^[A-Za-z0-9_-]{1,63}$/;

/**
 * A TLS client that finds no DNS SAN in a server certificate may compare the host name it
 * wanted with the CN (OpenSSL does). A host-name CN is always copied into the SANs, so
 * that only leaves a CN that is not one: harmless unless it is a single label, which an
 * intranet host may well be called. Refused for profiles with serverAuth; the client
 * profile has no such reader.
 */
function assertNoHostCnFallback(profile: ProfileName, names: { commonName: string | undefined; sans: San[] }): void {
  if (names.sans.length === 0) {
    throw badRequest(
      `the ${profile} profile includes TLS server authentication, which needs a subjectAltName (TLS clients do not read the CN); add one, or use the client profile for a certificate named only by its CN`,
    );
  }
  const cn = names.commonName;
  if (cn !== undefined && SINGLE_LABEL.test(cn) && !names.sans.some((s) => s.type === "DNS")) {
    throw badRequest(
      `the CN '${cn}' could be taken for a host name by TLS clients that fall back to the CN when a certificate has no DNS SAN, and the ${profile} profile includes TLS server authentication; add a DNS SAN, or use the client profile`,
    );
  }
}

/** The profile's own limits on a request, whoever asks: key algorithm and name kinds. */
function assertProfileAllows(profile: ProfileName, csr: CsrProposal, names: { commonName: string | undefined; sans: San[] }): void {
  const row: Profile = PROFILES[profile];
  if (!row.keyAlgorithms.includes(csr.keyAlgorithm)) throw badRequest(`the ${profile} profile does not accept ${csr.keyAlgorithm} keys (it takes ${row.keyAlgorithms.join(", ")})`);
  const kind = names.sans.find((san) => !row.nameKinds.includes(san.type));
  if (kind) throw badRequest(`the ${profile} profile does not carry ${kind.type} names (${formatSan(kind)}); it takes ${row.nameKinds.join(", ")}`);
  if (row.extendedKeyUsages.includes(OID.serverAuth)) assertNoHostCnFallback(profile, names);
}

/**
 * The one issuance pipeline, each step named once: plan → authorise (names and profile,
 * from the requester's policy) → build from the profile → lint → record intent → sign on
 * the token → store. Nothing is signed that the inventory does not already hold as a
 * pending row, and nothing is stored for a refused request. Every front end (REST, mTLS
 * renewal, the scheduler's renewals and re-issues, ACME) calls `issue`, renewals through `renew`; the CA's own
 * responder certificates go through `issueOwn`, the same steps without a requester policy.
 */
export class Authority {
  constructor(
    private readonly inventory: Inventory,
    private readonly keyring: Keyring,
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly events: CaEvents,
  ) {}

  private readonly templates = new Map<string, LeafTemplate>();

  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const hierarchy = request.requester.kind === "provisioner" ? request.requester.provisioner.hierarchy : request.requester.hierarchy;
    let issuer = this.keyring.active(hierarchy);
    try {
      let issued: IssuedCertificate;
      try {
        issued = await this.issueUnder(issuer, request);
      } catch (error) {
        if (!(error instanceof IssuerNotActiveError)) throw error;
        // Another process rotated or revoked the intermediate and this keyring has not seen
        // it yet (the intent was refused, nothing signed): catch up and plan again, once.
        await this.keyring.reload();
        const current = this.keyring.active(hierarchy);
        if (current.record.id === issuer.record.id) throw unavailable(`${error.message}; no other active intermediate is known yet, retry shortly`, error);
        issuer = current;
        issued = await this.issueUnder(issuer, request);
      }
      certificatesIssued.inc({ profile: request.profile, issuer: issuer.record.id, outcome: "issued" });
      return issued;
    } catch (error) {
      const outcome = error instanceof CaError && (error.kind === "bad_request" || error.kind === "forbidden") ? "refused" : "failed";
      certificatesIssued.inc({ profile: request.profile, issuer: issuer.record.id, outcome });
      throw error;
    }
  }

  /**
   * Renewal, for every front end (mTLS renewal, auto-renewal, the re-issue after an
   * emergency rotation): the successor keeps the predecessor's names, profile, lifetime and
   * autoRenew, and is linked to it through the same pipeline as any issuance.
   */
  async renew(request: RenewRequest): Promise<IssuedCertificate> {
    const { predecessor } = request;
    const profile = successorProfile(predecessor);
    return this.issue({
      csr: successorProposal(predecessor, request.csr),
      profile,
      ttlSeconds: successorLifetimeSeconds(predecessor, this.config.ca.backdateSeconds),
      autoRenew: predecessor.autoRenew,
      requester: request.requester,
      predecessorSerial: predecessor.serial,
    });
  }

  /** The CA's own certificate under `request.issuer`: the same build, lint, record, sign and store steps. */
  async issueOwn(request: OwnCertificateRequest): Promise<IssuedCertificate> {
    const names = { commonName: request.commonName, sans: request.sans };
    const plan = this.plan(request.issuer, request.profile, names, request.publicKeySpki, request.keyAlgorithm, request.ttlSeconds);
    return this.signPlanned(
      request.issuer,
      plan,
      {
        profile: request.profile,
        keyAlgorithm: request.keyAlgorithm,
        publicKeySpki: request.publicKeySpki,
        requester: request.actor,
        autoRenew: false,
        onlyFromActiveIssuer: false,
      },
      { actor: request.actor, action: request.audit.action, details: request.audit.details },
    );
  }

  private async issueUnder(issuer: ServingIssuer, request: IssueRequest): Promise<IssuedCertificate> {
    const names = namesOf(request.csr);
    const ttlSeconds = this.authorize(request, names);
    const plan = this.plan(issuer, request.profile, names, request.csr.publicKeySpki, request.csr.keyAlgorithm, ttlSeconds);
    const requester = request.requester;
    return this.signPlanned(
      issuer,
      plan,
      {
        profile: request.profile,
        keyAlgorithm: request.csr.keyAlgorithm,
        publicKeySpki: request.csr.publicKeySpki,
        requester: requester.actor,
        provisionerId: requester.kind === "provisioner" ? requester.provisioner.id : undefined,
        autoRenew: request.autoRenew ?? false,
        predecessorSerial: request.predecessorSerial,
        onlyFromActiveIssuer: true,
      },
      {
        actor: requester.actor,
        sourceIp: requester.sourceIp,
        action: request.predecessorSerial ? "certificate.renew" : "certificate.issue",
        details: {
          profile: request.profile,
          subject: plan.subject,
          sans: plan.sans,
          notAfter: plan.notAfter.toISOString(),
          ...(request.predecessorSerial ? { predecessor: request.predecessorSerial } : {}),
        },
      },
    );
  }

  /** Lint → record intent → sign → store, the same for every certificate the pipeline builds. */
  private async signPlanned(
    issuer: ServingIssuer,
    plan: Plan,
    intent: Intent,
    audit: { actor: string; sourceIp?: string | undefined; action: string; details: Record<string, unknown> },
  ): Promise<IssuedCertificate> {
    assertLintClean(plan.tbsDer, { kind: "leaf", issuer: issuer.facts });
    await this.record(issuer, plan, intent);
    const der = await this.sign(issuer, plan, audit);
    await this.store(plan, der, audit);
    this.events.emit("issued", { serial: plan.serial, issuerId: issuer.record.id });
    return {
      serial: plan.serial,
      der,
      pem: toPem(der),
      chain: issuer.chain.map((c) => toPem(c)),
      issuerId: issuer.record.id,
      profile: intent.profile,
      subject: plan.subject,
      sans: plan.sans,
      notBefore: plan.notBefore,
      notAfter: plan.notAfter,
    };
  }

  /**
   * Names and profile from the requester's policy, then the profile's own limits; returns
   * the lifetime: min(requested or default, requester's maximum, CA maximum).
   */
  private authorize(request: IssueRequest, names: { commonName: string | undefined; sans: San[] }): number {
    let requesterMax = Infinity;
    const requester = request.requester;
    if (requester.kind === "provisioner") {
      const provisioner = requester.provisioner;
      if (provisioner.deletedAt || provisioner.disabled) throw forbidden(`provisioner '${provisioner.name}' is ${provisioner.deletedAt ? "removed" : "disabled"}; it cannot issue`);
      const policy = ProvisionerPolicy.of(provisioner);
      policy.authorizeProfile(request.profile);
      policy.authorizeNames(names);
      requesterMax = policy.maxTtlSeconds;
    }
    assertProfileAllows(request.profile, request.csr, names);
    const requested = request.ttlSeconds ?? this.config.ca.defaultTtlSeconds;
    if (!(requested >= MIN_TTL_SECONDS)) throw badRequest(`ttlSeconds must be at least ${MIN_TTL_SECONDS} (got ${requested}): a shorter certificate would expire before it could be used`);
    if (!(requesterMax >= MIN_TTL_SECONDS))
      throw forbidden(`the provisioner's maxTtlSeconds (${requesterMax}) is below the ${MIN_TTL_SECONDS} s minimum lifetime; raise it (PATCH /v1/provisioners/NAME)`);
    if (!(this.config.ca.maxTtlSeconds >= MIN_TTL_SECONDS))
      throw unavailable(`PKI_MAX_TTL_SECONDS (${this.config.ca.maxTtlSeconds}) is below the ${MIN_TTL_SECONDS} s minimum lifetime; the operator must raise it`);
    return Math.min(requested, requesterMax, this.config.ca.maxTtlSeconds);
  }

  /** The bytes every leaf of this issuer shares, built once per issuer. */
  private templateFor(issuer: ServingIssuer): LeafTemplate {
    let template = this.templates.get(issuer.record.id);
    if (!template) {
      const identity = { subjectDer: issuer.facts.subjectDer, subjectKeyId: issuer.facts.subjectKeyId, keyAlgorithm: issuer.facts.keyAlgorithm };
      template = leafTemplate(identity, leafRevocationUrls(this.config.publicUrl, issuer.record.id));
      this.templates.set(issuer.record.id, template);
    }
    return template;
  }

  /** Validity (backdated, within the profile's bounds, ending no later than the issuer) and the TBS built from the profile. */
  private plan(
    issuer: ServingIssuer,
    profileName: CertificateProfileName,
    names: { commonName: string | undefined; sans: San[] },
    publicKeySpki: Buffer,
    keyAlgorithm: KeyAlgorithm,
    ttlSeconds: number,
  ): Plan {
    const profile: Profile = PROFILES[profileName];
    const lifetime = Math.min(Math.max(ttlSeconds, profile.lifetime.minSeconds), profile.lifetime.maxSeconds ?? Infinity);
    const start = Math.floor(this.clock.now().getTime() / 1000) * 1000;
    // Backdated to tolerate relying parties whose clocks run a little slow.
    const notBefore = new Date(start - this.config.ca.backdateSeconds * 1000);
    const notAfter = new Date(Math.min(start + lifetime * 1000, issuer.facts.notAfter.getTime()));
    // Only the issuer's own notAfter can cut the lifetime below the minimum now: the
    // operator's problem (rotate), not the caller's.
    if (notAfter.getTime() - start < MIN_TTL_SECONDS * 1000) throw unavailable(`issuer ${issuer.record.id} expires at ${issuer.facts.notAfter.toISOString()}, too soon to issue from; rotate it`);
    const serial = newSerial();
    const tbsDer = encodeLeafTbs(this.templateFor(issuer), { serial: serial.bytes, notBefore, notAfter, commonName: names.commonName, publicKeySpki, keyAlgorithm, profile, sans: names.sans });
    return { serial: serial.hex, tbsDer, notBefore, notAfter, subject: names.commonName ? `CN=${names.commonName}` : "", sans: names.sans.map(formatSan) };
  }

  private async record(issuer: ServingIssuer, plan: Plan, intent: Intent): Promise<void> {
    try {
      await this.inventory.certificates.recordIntent({
        serial: plan.serial,
        issuerId: issuer.record.id,
        subject: plan.subject,
        sans: plan.sans,
        notBefore: plan.notBefore,
        notAfter: plan.notAfter,
        tbsDer: plan.tbsDer,
        ...intent,
      });
    } catch (error) {
      if (error instanceof IssuerNotActiveError) throw error;
      if (error instanceof DuplicateSerialError) throw new CaError("internal", error.message, { cause: error });
      if (error instanceof SuccessorExistsError) {
        throw conflict(
          `certificate ${error.predecessorSerial} has already been renewed${error.successorSerial ? ` as ${error.successorSerial}` : ""}; a certificate has one live successor. Renew with the successor, or revoke it (reason superseded) first`,
          error,
        );
      }
      throw inventoryFailure(error, "nothing was signed");
    }
  }

  private async sign(issuer: ServingIssuer, plan: Plan, audit: { actor: string; sourceIp?: string | undefined; action: string }): Promise<Buffer> {
    try {
      return await signCertificate(plan.tbsDer, issuer.signer);
    } catch (error) {
      await this.inventory.certificates
        .markFailed(plan.serial, { actor: audit.actor, action: audit.action, target: plan.serial, sourceIp: audit.sourceIp, details: { reason: (error as Error).message } })
        .catch(() => {}); // the reconcile-intents job resolves a pending row we could not mark
      throw unavailable(`the token could not sign: ${(error as Error).message}`, error);
    }
  }

  private async store(plan: Plan, der: Buffer, audit: { actor: string; sourceIp?: string | undefined; action: string; details: Record<string, unknown> }): Promise<void> {
    try {
      await this.inventory.certificates.markIssued(plan.serial, der, { actor: audit.actor, action: audit.action, target: plan.serial, sourceIp: audit.sourceIp, details: audit.details });
    } catch (error) {
      throw unavailable("the certificate was signed but could not be stored; it was not released and will be reconciled", error);
    }
  }
}

/**
 * Who asks for the successor of a stored certificate: the provisioner that enrolled it,
 * as it is now (its current policy applies to the renewal), or an operator.
 */
export async function successorRequester(inventory: Inventory, record: { serial: string; provisionerId: string | null; issuerId: string }, actor: string, sourceIp?: string): Promise<Requester> {
  if (!record.provisionerId) {
    const issuer = await inventory.issuers.get(record.issuerId).catch((error: unknown) => {
      throw inventoryFailure(error, "nothing was renewed");
    });
    return { kind: "operator", actor, hierarchy: issuer?.hierarchy ?? "default", sourceIp };
  }
  const provisioner = await inventory.provisioners.get(record.provisionerId).catch((error: unknown) => {
    throw inventoryFailure(error, "nothing was renewed");
  });
  if (!provisioner || provisioner.deletedAt || provisioner.disabled) {
    throw forbidden(
      `provisioner '${provisioner?.name ?? record.provisionerId}' that enrolled certificate ${record.serial} has been ${provisioner?.disabled && !provisioner.deletedAt ? "disabled" : "removed"}; its certificates cannot renew`,
    );
  }
  return { kind: "provisioner", actor, provisioner, sourceIp };
}
