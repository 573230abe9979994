// The ACME registration authority for accounts and their certificates (RFC 8555 §7.3,
// §7.4.2, §7.6): registration within the new-account limits (and external account binding
// where the provisioner requires it), contact and status changes, key rollover, the
// account's orders, certificate download and revocation through the CA's revocation. The
// router verifies every JWS (the EAB binding and the key-change inner JWS included) and
// passes the keys and payload fields it proved; this service never sees HTTP.
import { type KeyObject, X509Certificate } from "node:crypto";
import { REASON_NAMES, REVOCATION_REASONS, revokeCertificate, type CaRuntime } from "@pki/authority";
import { AcmeAccountKeyInUseError, AcmeAccountLimitError, AcmeEabKeyUnusableError, type AcmeAccountRecord, type AcmeProvisionerRecord } from "@pki/db";
import { CaError, toPem } from "@pki/x509";
import { sourceNetwork } from "./identifiers.ts";
import type { AcmeOrders } from "./orders.ts";
import { actorOf } from "./orders.ts";
import { AcmeProblem, malformed, unauthorized } from "./problems.ts";

const HOUR_MS = 3600_000;
const MAX_CONTACTS = 4;
const MAX_CONTACT_CHARS = 254;
/** Orders listed per page of an account's orders. */
const ORDERS_PAGE = 100;

/** A provisioner's ACME server, as a request reached it. */
export interface AcmeServer {
  provisioner: AcmeProvisionerRecord;
  sourceIp: string;
}

export interface RegisterInput {
  /** the verified account key, as a public JWK, and its RFC 7638 thumbprint */
  jwk: Record<string, unknown>;
  keyThumbprint: string;
  contact: unknown;
  onlyReturnExisting: boolean;
  /** the EAB key that verified the request's binding, if it carried one */
  eabKid: string | undefined;
}

export class AcmeAccounts {
  private readonly store: CaRuntime["inventory"]["acme"];

  constructor(
    private readonly runtime: CaRuntime,
    /** whose rate checks these limits share */
    private readonly orders: Pick<AcmeOrders, "checkRate">,
  ) {
    this.store = runtime.inventory.acme;
  }

  /** The account holding this key, or a new one within the new-account limits; `created` says which. */
  async register(at: AcmeServer, input: RegisterInput): Promise<{ account: AcmeAccountRecord; created: boolean }> {
    const existing = await this.store.accountByThumbprint(at.provisioner.id, input.keyThumbprint);
    if (existing) return { account: existing, created: false };
    if (input.onlyReturnExisting) throw new AcmeProblem("accountDoesNotExist", "no account holds this key (onlyReturnExisting)");
    const contact = contacts(input.contact);
    if (input.eabKid === undefined && at.provisioner.eabRequired)
      throw new AcmeProblem(
        "externalAccountRequired",
        `ACME provisioner '${at.provisioner.name}' requires external account binding; ask its operator for a key (pki provisioner eab ${at.provisioner.name})`,
      );
    const limits = this.runtime.config.acme.rateLimits;
    const now = this.runtime.clock.now();
    try {
      const account = await this.store.createAccount(
        { provisionerId: at.provisioner.id, keyThumbprint: input.keyThumbprint, jwk: input.jwk, contact, eabKid: input.eabKid, createdFrom: sourceNetwork(at.sourceIp), now },
        { since: new Date(now.getTime() - HOUR_MS), perSource: limits.newAccountsPerAddressHour, perProvisioner: limits.newAccountsPerProvisionerHour },
        { actor: `acme:${at.provisioner.name}`, action: "acme.account.create", sourceIp: at.sourceIp, details: { contact } },
      );
      return { account, created: true };
    } catch (error) {
      if (error instanceof AcmeAccountLimitError) {
        this.orders.checkRate("new accounts", error.counts.source, limits.newAccountsPerAddressHour, `address ${sourceNetwork(at.sourceIp)}`);
        this.orders.checkRate("new accounts", error.counts.provisioner, limits.newAccountsPerProvisionerHour, `ACME provisioner '${at.provisioner.name}'`);
      }
      if (error instanceof AcmeEabKeyUnusableError) throw unauthorized(error.message);
      if (error instanceof AcmeAccountKeyInUseError) {
        const raced = await this.store.accountByThumbprint(at.provisioner.id, input.keyThumbprint);
        if (raced) return { account: raced, created: false };
      }
      throw error;
    }
  }

  /** Changes the account's contacts, or deactivates it. */
  async update(at: AcmeServer, account: AcmeAccountRecord, input: { contact?: unknown; status?: unknown }): Promise<AcmeAccountRecord> {
    if (input.status !== undefined && input.status !== "deactivated") throw malformed("an account's status can only be changed to 'deactivated'");
    const changes = { contact: input.contact === undefined ? undefined : contacts(input.contact), status: input.status === "deactivated" ? ("deactivated" as const) : undefined };
    if (changes.contact === undefined && changes.status === undefined) return account;
    const updated = await this.store.updateAccount(account.id, changes, {
      actor: actorOf(at.provisioner, account),
      action: changes.status ? "acme.account.deactivate" : "acme.account.update",
      sourceIp: at.sourceIp,
    });
    if (!updated) throw unauthorized(`account ${account.id} is no longer valid`);
    return updated;
  }

  /** Rolls the account over to a new key (RFC 8555 §7.3.5), unless another account holds it. */
  async changeKey(at: AcmeServer, account: AcmeAccountRecord, newKey: { jwk: Record<string, unknown>; thumbprint: string }, holderUrl: (id: string) => string): Promise<AcmeAccountRecord> {
    const holder = await this.store.accountByThumbprint(at.provisioner.id, newKey.thumbprint);
    if (holder) throw new AcmeProblem("conflict", "the new key is already in use by an account", { location: holderUrl(holder.id) });
    const changed = await this.store.changeAccountKey(account.id, newKey.jwk, newKey.thumbprint, {
      actor: actorOf(at.provisioner, account),
      action: "acme.account.key-change",
      sourceIp: at.sourceIp,
    });
    if (!changed) throw new AcmeProblem("conflict", "the new key is already in use by an account");
    return { ...account, jwk: newKey.jwk, keyThumbprint: newKey.thumbprint };
  }

  /** A page of the account's orders, newest first, before `before` (an RFC 3339 time) when given; `next` is where the following page starts. */
  async orderPage(account: AcmeAccountRecord, before: unknown): Promise<{ orderIds: string[]; next: Date | undefined }> {
    const cursor = typeof before === "string" && !Number.isNaN(Date.parse(before)) ? new Date(before) : undefined;
    const page = await this.store.orderIds(account.id, ORDERS_PAGE + 1, cursor);
    const next = page.length > ORDERS_PAGE ? page[ORDERS_PAGE - 1]?.createdAt : undefined;
    return { orderIds: page.slice(0, ORDERS_PAGE).map((o) => o.id), next };
  }

  /** The account's certificate as application/pem-certificate-chain: the leaf, then the intermediates (not the root). */
  async certificateChain(account: AcmeAccountRecord, serial: string): Promise<string> {
    const stored = /^[0-9a-f]{2,40}$/.test(serial) ? await this.store.orderCertificate(serial) : undefined;
    if (!stored || stored.accountId !== account.id) throw new AcmeProblem("malformed", "no such certificate for this account", { status: 404 });
    const issuer = stored.issuerId === null ? undefined : this.runtime.keyring.get(stored.issuerId);
    if (!stored.der || !issuer) throw new AcmeProblem("serverInternal", `certificate ${serial} or its issuer is not available`, { status: 500 });
    return [toPem(stored.der), ...issuer.chain.slice(0, -1).map((der) => toPem(der))].join("");
  }

  /**
   * Revokes a certificate this CA issued (RFC 8555 §7.6): asked by the account that ordered
   * it, or signed by the certificate's own key.
   */
  async revoke(at: AcmeServer, input: { certificate: unknown; reason: unknown; account: AcmeAccountRecord | undefined; signingKey: KeyObject }): Promise<void> {
    if (typeof input.certificate !== "string") throw malformed("revokeCert needs 'certificate': the DER certificate in base64url");
    const der = Buffer.from(input.certificate, "base64url");
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (error) {
      throw malformed("'certificate' is not a DER certificate", error);
    }
    // X509Certificate ignores bytes after the certificate; a request carrying any is not the DER of one certificate.
    if (!cert.raw.equals(der)) throw malformed("'certificate' has bytes after the DER certificate");
    const serial = cert.serialNumber.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, "");
    const record = await this.runtime.inventory.certificates.get(serial);
    if (!record?.der?.equals(cert.raw)) throw unauthorized("this CA did not issue that certificate");
    if (input.account) {
      const origin = await this.store.certificateOrigin(serial);
      if (origin?.accountId !== input.account.id) throw unauthorized("the account that signed this request did not order that certificate");
    } else {
      const spki = (k: KeyObject) => k.export({ type: "spki", format: "der" });
      if (!spki(input.signingKey).equals(spki(cert.publicKey))) throw unauthorized("the request is signed neither by the ordering account nor by the certificate's key");
    }
    let reason: string | undefined;
    if (input.reason !== undefined) {
      const name = typeof input.reason === "number" ? REASON_NAMES[input.reason] : undefined;
      if (!name || !Object.hasOwn(REVOCATION_REASONS, name))
        throw new AcmeProblem("badRevocationReason", `revocation reason ${String(input.reason).slice(0, 10)} is not accepted; use one of ${Object.values(REVOCATION_REASONS).join(", ")}`);
      reason = name;
    }
    const actor = input.account ? actorOf(at.provisioner, input.account) : `acme:${at.provisioner.name}/certificate-key`;
    try {
      await revokeCertificate(this.runtime, { serial, reason, actor, sourceIp: at.sourceIp });
    } catch (error) {
      if (error instanceof CaError && error.kind === "conflict") throw new AcmeProblem("alreadyRevoked", error.message);
      throw error;
    }
  }
}

function contacts(raw: unknown): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > MAX_CONTACTS) throw new AcmeProblem("invalidContact", `'contact' must be an array of at most ${MAX_CONTACTS} mailto: URLs`);
  return raw.map((c) => {
    if (typeof c !== "string" || c.length > MAX_CONTACT_CHARS) throw new AcmeProblem("invalidContact", `each contact must be a mailto: URL of at most ${MAX_CONTACT_CHARS} characters`);
    if (!c.startsWith("mailto:")) throw new AcmeProblem("unsupportedContact", `contact '${c.slice(0, 60)}' is not a mailto: URL`);
    if (!/^mailto:[^\s@,?%]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/.test(c)) throw new AcmeProblem("invalidContact", `contact '${c.slice(0, 60)}' is not a single plain e-mail address`);
    return c;
  });
}
