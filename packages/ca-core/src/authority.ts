import { isIP } from "node:net";
import type { Config } from "@pki/config";
import type { Inventory } from "@pki/db";
import { DuplicateSerialError, IssuerNotActiveError, SuccessorExistsError } from "@pki/db";
import { assertLintClean, LintError } from "@pki/lint";
import type { CsrProposal } from "./csr.ts";
import { CaError, badRequest, conflict, inventoryFailure, unavailable } from "./errors.ts";
import type { Clock } from "./clock.ts";
import type { Keyring, ServingIssuer } from "./keyring.ts";
import { type San, formatSan, sanProblem } from "./names.ts";
import { PROFILES, type ProfileName } from "./profiles.ts";
import { OID, newSerial, signCertificate } from "./x509.ts";
import { encodeLeafTbs, leafTemplate, type LeafTemplate } from "./leaf-tbs.ts";
import { leafRevocationUrls } from "./ceremony.ts";
import { toPem } from "./der.ts";
import type { CaEvents } from "./events.ts";
import { certificatesIssued } from "@pki/metrics";

/** Who is asking, and what their policy allows. The API fills this in from the credential. */
export interface Requester {
  /** for the audit log: "admin:<name>", "provisioner:<name>", "mtls:<serial>", "cli" */
  actor: string;
  provisionerId?: string;
  sourceIp?: string;
  hierarchy?: string;
  /** upper bound on lifetime from the requester's policy */
  maxTtlSeconds?: number;
  /** throws a CaError("forbidden") naming the first name that is not allowed */
  authorizeNames?: (names: { commonName: string | undefined; sans: San[] }) => void;
}

/** The shortest lifetime the CA signs: less would expire before clients could use it. */
export const MIN_TTL_SECONDS = 60;

export interface IssueRequest {
  csr: CsrProposal;
  profile: ProfileName;
  ttlSeconds?: number | undefined;
  autoRenew?: boolean | undefined;
  requester: Requester;
  /** set on renewal: the certificate this one replaces */
  predecessorSerial?: string | undefined;
}

export interface IssuedCertificate {
  serial: string;
  der: Buffer;
  pem: string;
  /** PEM: the issuing intermediate, then up to the root */
  chain: string[];
  issuerId: string;
  profile: ProfileName;
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
}

const MAX_SANS = 100;
const MAX_CN_LENGTH = 64; // RFC 5280 ub-common-name

/** The names a certificate will carry: the CN, and the SANs with the CN added where it is a host name. */
export function namesOf(csr: CsrProposal): { commonName: string | undefined; sans: San[] } {
  const sans = [...csr.sans];
  const cn = csr.commonName;
  if (cn !== undefined) {
    if (cn.length === 0 || cn.length > MAX_CN_LENGTH) throw badRequest(`the CSR's CN must be 1 to ${MAX_CN_LENGTH} characters`);
    if (/[\u0000-\u001f\u007f]/.test(cn)) throw badRequest("the CSR's CN contains control characters");
    const asSan: San | undefined = isIP(cn) ? { type: "IP", value: cn } : /^[a-z0-9*][a-z0-9.-]*\.[a-z0-9-]+$/i.test(cn) ? { type: "DNS", value: cn.toLowerCase() } : undefined;
    if (asSan && !sans.some((s) => s.type === asSan.type && s.value === asSan.value)) {
      const problem = sanProblem(asSan);
      if (problem) throw badRequest(problem.replace(/^SAN/, "CN as SAN"));
      sans.unshift(asSan);
    }
  }
  if (!cn && sans.length === 0) throw badRequest("the CSR names no subject: give it a CN or a subjectAltName");
  if (sans.length > MAX_SANS) throw badRequest(`the CSR asks for ${sans.length} SANs; at most ${MAX_SANS} are allowed`);
  const unique = new Map(sans.map((s) => [formatSan(s), s]));
  return { commonName: cn, sans: [...unique.values()] };
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

/**
 * The issuance cycle, one named step each: authorize names → build from profile → lint →
 * record intent → sign on the token → store. Nothing is signed that the inventory does
 * not already hold as a pending row, and nothing is stored for a refused request.
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

  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    let issuer = this.keyring.active(request.requester.hierarchy);
    try {
      let issued: IssuedCertificate;
      try {
        issued = await this.issueUnder(issuer, request);
      } catch (error) {
        if (!(error instanceof IssuerNotActiveError)) throw error;
        // Another process rotated or revoked the intermediate and this keyring has not seen
        // it yet (the intent was refused, nothing signed): catch up and plan again, once.
        await this.keyring.reload();
        const current = this.keyring.active(request.requester.hierarchy);
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

  private async issueUnder(issuer: ServingIssuer, request: IssueRequest): Promise<IssuedCertificate> {
    const names = namesOf(request.csr);
    request.requester.authorizeNames?.(names);
    if (PROFILES[request.profile].extendedKeyUsages.includes(OID.serverAuth)) assertNoHostCnFallback(request.profile, names);
    const plan = this.plan(request, issuer, names);
    assertLintClean(plan.tbsDer, { kind: "leaf", issuer: issuer.facts });
    await this.record(request, issuer, plan);
    const der = await this.sign(plan, issuer, request.requester);
    await this.store(plan, der, request);
    this.events.emit("issued", { serial: plan.serial, issuerId: issuer.record.id });
    return {
      serial: plan.serial,
      der,
      pem: toPem(der),
      chain: issuer.chain.map((c) => toPem(c)),
      issuerId: issuer.record.id,
      profile: request.profile,
      subject: plan.subject,
      sans: plan.sans,
      notBefore: plan.notBefore,
      notAfter: plan.notAfter,
    };
  }

  /** min(requested or default, requester's maximum, CA maximum); a 4xx naming the bound when that is under the minimum. */
  private lifetimeSeconds(request: IssueRequest): number {
    const requested = request.ttlSeconds ?? this.config.ca.defaultTtlSeconds;
    if (!(requested >= MIN_TTL_SECONDS)) throw badRequest(`ttlSeconds must be at least ${MIN_TTL_SECONDS} (got ${requested}): a shorter certificate would expire before it could be used`);
    const requesterMax = request.requester.maxTtlSeconds ?? Infinity;
    if (!(requesterMax >= MIN_TTL_SECONDS))
      throw new CaError("forbidden", `the provisioner's maxTtlSeconds (${requesterMax}) is below the ${MIN_TTL_SECONDS} s minimum lifetime; raise it (PATCH /v1/provisioners/NAME)`);
    if (!(this.config.ca.maxTtlSeconds >= MIN_TTL_SECONDS))
      throw new CaError("unavailable", `PKI_MAX_TTL_SECONDS (${this.config.ca.maxTtlSeconds}) is below the ${MIN_TTL_SECONDS} s minimum lifetime; the operator must raise it`);
    return Math.min(requested, requesterMax, this.config.ca.maxTtlSeconds);
  }

  /** Lifetime = min(requested or default, requester's maximum, CA maximum), ending no later than the issuer. */
  private plan(request: IssueRequest, issuer: ServingIssuer, names: { commonName: string | undefined; sans: San[] }) {
    const now = this.clock.now();
    const ttl = this.lifetimeSeconds(request);
    const start = Math.floor(now.getTime() / 1000) * 1000;
    // Backdated to tolerate relying parties whose clocks run a little slow.
    const notBefore = new Date(start - this.config.ca.backdateSeconds * 1000);
    const notAfter = new Date(Math.min(start + ttl * 1000, issuer.facts.notAfter.getTime()));
    // Only the issuer's own notAfter can cut the lifetime below the minimum now: the
    // operator's problem (rotate), not the caller's.
    if (notAfter.getTime() - start < MIN_TTL_SECONDS * 1000)
      throw new CaError("unavailable", `issuer ${issuer.record.id} expires at ${issuer.facts.notAfter.toISOString()}, too soon to issue from; rotate it`);
    const serial = newSerial();
    const tbsDer = encodeLeafTbs(this.templateFor(issuer), {
      serial: serial.bytes,
      notBefore,
      notAfter,
      commonName: names.commonName,
      publicKeySpki: request.csr.publicKeySpki,
      keyAlgorithm: request.csr.keyAlgorithm,
      extendedKeyUsages: PROFILES[request.profile].extendedKeyUsages,
      sans: names.sans,
    });
    return { serial: serial.hex, tbsDer, notBefore, notAfter, subject: names.commonName ? `CN=${names.commonName}` : "", sans: names.sans.map(formatSan) };
  }

  private async record(request: IssueRequest, issuer: ServingIssuer, plan: ReturnType<Authority["plan"]>): Promise<void> {
    try {
      await this.inventory.certificates.recordIntent({
        serial: plan.serial,
        issuerId: issuer.record.id,
        profile: request.profile,
        subject: plan.subject,
        sans: plan.sans,
        keyAlgorithm: request.csr.keyAlgorithm,
        publicKeySpki: request.csr.publicKeySpki,
        notBefore: plan.notBefore,
        notAfter: plan.notAfter,
        tbsDer: plan.tbsDer,
        requester: request.requester.actor,
        provisionerId: request.requester.provisionerId,
        autoRenew: request.autoRenew ?? false,
        predecessorSerial: request.predecessorSerial,
        onlyFromActiveIssuer: true,
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

  private async sign(plan: ReturnType<Authority["plan"]>, issuer: ServingIssuer, requester: Requester): Promise<Buffer> {
    try {
      return await signCertificate(plan.tbsDer, issuer.signer);
    } catch (error) {
      await this.inventory.certificates
        .markFailed(plan.serial, { actor: requester.actor, action: "certificate.issue", target: plan.serial, sourceIp: requester.sourceIp, details: { reason: (error as Error).message } })
        .catch(() => {}); // the start-up reconciliation resolves a pending row we could not mark
      throw unavailable(`the token could not sign: ${(error as Error).message}`, error);
    }
  }

  private async store(plan: ReturnType<Authority["plan"]>, der: Buffer, request: IssueRequest): Promise<void> {
    try {
      await this.inventory.certificates.markIssued(plan.serial, der, {
        actor: request.requester.actor,
        action: request.predecessorSerial ? "certificate.renew" : "certificate.issue",
        target: plan.serial,
        sourceIp: request.requester.sourceIp,
        details: {
          profile: request.profile,
          subject: plan.subject,
          sans: plan.sans,
          notAfter: plan.notAfter.toISOString(),
          ...(request.predecessorSerial ? { predecessor: request.predecessorSerial } : {}),
        },
      });
    } catch (error) {
      throw unavailable("the certificate was signed but could not be stored; it was not released and will be reconciled", error);
    }
  }
}

export { LintError };
