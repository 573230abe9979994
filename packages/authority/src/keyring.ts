import type { Config } from "@pki/config";
import { type KeyAlgorithm, type KeyInfo, type KeyManager, type Signer, Token } from "@pki/hsm";
import type { Inventory, IssuerRecord } from "@pki/db";
import { caCertificateFacts, type CaCertificateFacts } from "@pki/x509";
import type { Clock } from "./clock.ts";
import { StartupCheckError } from "@pki/base";
import { tokenSignSeconds } from "@pki/metrics";

/** An issuer this process can sign with: its record, certificate facts and token signer. */
export interface ServingIssuer {
  record: IssuerRecord;
  facts: CaCertificateFacts;
  signer: Signer;
  /** DER, from this issuer up to and including its root */
  chain: Buffer[];
}

/** What a keyring reload changed: issuer ids added, removed, and "id:old->new" status changes. */
export interface KeyringChange {
  added: string[];
  removed: string[];
  statusChanged: string[];
}

// Refusal to serve, with the issuer and the reason; in @pki/base so the HTTP kit maps it without this package.
export { StartupCheckError };

export function openToken(config: Config, which: "root" | "issuing"): KeyManager {
  const token = config.hsm[which];
  if (!config.hsm.modulePath) throw new StartupCheckError("no PKCS#11 module found: install softhsm2 or set PKCS11_MODULE");
  if (!token.pin) throw new StartupCheckError(`no PIN for token '${token.label}': set PKI_${which.toUpperCase()}_PIN or PKI_${which.toUpperCase()}_PIN_FILE`);
  return Token.open({ modulePath: config.hsm.modulePath, softhsmConf: config.hsm.softhsmConf, label: token.label, pin: token.pin, sessions: config.hsm.signingSessions });
}

/** Checks the token key behind an issuer is the key its certificate names. */
export async function bindSigner(token: KeyManager, record: IssuerRecord): Promise<{ signer: Signer; facts: CaCertificateFacts }> {
  const facts = caCertificateFacts(record.certificateDer);
  const signer = await token.signer(record.keyUri).catch((error: Error) => {
    throw new StartupCheckError(`issuer ${record.id}: ${error.message}`);
  });
  if (Buffer.compare(signer.publicKeySpki, facts.spki) !== 0) {
    throw new StartupCheckError(`issuer ${record.id}: the token key ${record.keyUri} does not match the public key in the issuer certificate`);
  }
  return { signer: timed(signer, record.id), facts };
}

/** The same signer, with each signature's latency in pki_token_sign_seconds. */
function timed(signer: Signer, key: string): Signer {
  const time = async <T>(operation: () => Promise<T>): Promise<T> => {
    const end = tokenSignSeconds.startTimer({ key });
    try {
      return await operation();
    } finally {
      end();
    }
  };
  return {
    keyUri: signer.keyUri,
    algorithm: signer.algorithm,
    publicKeySpki: signer.publicKeySpki,
    hash: signer.hash,
    sign: (data) => time(() => signer.sign(data)),
    signDigest: (digest) => time(() => signer.signDigest(digest)),
  };
}

/**
 * The intermediates this process issues and publishes with. Opening it is the start-up
 * check: every active or retired intermediate's key must be on the token and match its
 * certificate, and each hierarchy's active intermediate must be within its validity.
 */
export class Keyring {
  private reloadTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<KeyringChange> | undefined;

  private constructor(
    private readonly token: KeyManager,
    private readonly issuers: Map<string, ServingIssuer>,
    /** where reload() reads the issuers from (rotation without restart) */
    private readonly source?: { inventory: Inventory; clock: Clock },
  ) {}

  static async open(config: Config, inventory: Inventory, clock: Clock): Promise<Keyring> {
    const all = await inventory.issuers.list();
    const intermediates = all.filter((i) => i.role === "intermediate" && (i.status === "active" || i.status === "retired"));
    if (!intermediates.some((i) => i.status === "active")) throw new StartupCheckError("no active intermediate: run `pki init` first");
    const token = openToken(config, "issuing");
    const byId = new Map(all.map((i) => [i.id, i]));
    const serving = new Map<string, ServingIssuer>();
    try {
      for (const record of intermediates) {
        const { signer, facts } = await bindSigner(token, record);
        const now = clock.now();
        if (record.status === "active" && facts.notAfter <= now) {
          throw new StartupCheckError(`issuer ${record.id}: the active intermediate expired at ${facts.notAfter.toISOString()}; rotate it (pki issuers rotate)`);
        }
        if (record.status === "active" && facts.notBefore > now) {
          throw new StartupCheckError(`issuer ${record.id}: the active intermediate is not valid until ${facts.notBefore.toISOString()} (check the system clock)`);
        }
        const chain = [record.certificateDer];
        for (let parent = record.parentId ? byId.get(record.parentId) : undefined; parent; parent = parent.parentId ? byId.get(parent.parentId) : undefined) {
          chain.push(parent.certificateDer);
        }
        serving.set(record.id, { record, facts, signer, chain });
      }
    } catch (error) {
      token.close();
      throw error;
    }
    return new Keyring(token, serving, { inventory, clock });
  }

  /**
   * Re-reads the issuers so a running process follows rotations: a newly active
   * intermediate is bound to its token key, one that became retired stops being chosen by
   * active() but stays for CRL/OCSP, one that became expired is dropped. The new view
   * replaces the old in one synchronous step, so active() never sees a half-built keyring;
   * if a new issuer's key cannot be bound, the old view stays and the error is thrown.
   */
  async reload(): Promise<KeyringChange> {
    this.reloading ??= this.readIssuers().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async readIssuers(): Promise<KeyringChange> {
    if (!this.source) return { added: [], removed: [], statusChanged: [] };
    const all = await this.source.inventory.issuers.list();
    const byId = new Map(all.map((i) => [i.id, i]));
    const next = new Map<string, ServingIssuer>();
    const change: KeyringChange = { added: [], removed: [], statusChanged: [] };
    for (const record of all) {
      if (record.role !== "intermediate" || (record.status !== "active" && record.status !== "retired")) continue;
      const current = this.issuers.get(record.id);
      if (current) {
        if (current.record.status !== record.status) change.statusChanged.push(`${record.id}:${current.record.status}->${record.status}`);
        next.set(record.id, { ...current, record });
        continue;
      }
      const { signer, facts } = await bindSigner(this.token, record);
      const chain = [record.certificateDer];
      for (let parent = record.parentId ? byId.get(record.parentId) : undefined; parent; parent = parent.parentId ? byId.get(parent.parentId) : undefined) {
        chain.push(parent.certificateDer);
      }
      next.set(record.id, { record, facts, signer, chain });
      change.added.push(record.id);
    }
    for (const id of this.issuers.keys()) if (!next.has(id)) change.removed.push(id);
    this.issuers.clear();
    for (const [id, issuer] of next) this.issuers.set(id, issuer);
    return change;
  }

  /** Calls reload() every `intervalMs` until close(); failures go to `onError` and the old view stays. */
  startReloading(intervalMs: number, onError: (error: Error) => void = () => {}, onChange: (change: KeyringChange) => void = () => {}): void {
    if (this.reloadTimer || intervalMs <= 0) return;
    this.reloadTimer = setInterval(() => {
      this.reload().then((change) => {
        if (change.added.length || change.removed.length || change.statusChanged.length) onChange(change);
      }, onError);
    }, intervalMs);
    this.reloadTimer.unref();
  }

  active(hierarchy = "default"): ServingIssuer {
    const found = [...this.issuers.values()].find((i) => i.record.hierarchy === hierarchy && i.record.status === "active");
    if (!found) throw new StartupCheckError(`hierarchy '${hierarchy}' has no active intermediate`);
    return found;
  }

  get(issuerId: string): ServingIssuer | undefined {
    return this.issuers.get(issuerId);
  }

  all(): ServingIssuer[] {
    return [...this.issuers.values()];
  }

  /**
   * A new key pair on the issuing token for a delegated (non-CA) role such as an issuer's
   * OCSP responder: sensitive and never extractable like the CA keys.
   */
  async generateDelegatedKey(objectLabel: string, algorithm: KeyAlgorithm): Promise<KeyInfo> {
    return this.token.generateKey(objectLabel, algorithm);
  }

  /** A signer for a delegated key on the issuing token, by its pkcs11: URI. */
  async delegatedSigner(keyUri: string): Promise<Signer> {
    return this.token.signer(keyUri);
  }

  /**
   * Destroys a delegated key on the issuing token (private and public objects); returns
   * how many objects went, 0 if it was already gone. A key an issuer of this keyring signs
   * with is refused whatever the caller thinks it is.
   */
  async destroyDelegatedKey(keyUri: string): Promise<number> {
    if (this.all().some((issuer) => issuer.record.keyUri === keyUri)) throw new Error(`refusing to destroy ${keyUri}: it is an issuer's signing key`);
    return this.token.destroyKey(keyUri);
  }

  tokenStats() {
    return this.token.stats();
  }

  close(): void {
    clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
    this.token.close();
  }
}
