import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Pkcs11Module, graphene, pkcs11js } from "./module.ts";
import { HsmError, describePkcs11Error } from "./errors.ts";
import { type KeyAlgorithm, DIGEST_INFO_PREFIX, EC_PARAMS, digest, ecPublicKeySpki, ecdsaRawToDer, hashFor, rsaPublicKeySpki } from "./algorithms.ts";
import { formatKeyUri, parseKeyUri } from "./uri.ts";
import type { KeyInfo, KeyManager, Signer } from "./key-manager.ts";

export type { KeyInfo, Signer } from "./key-manager.ts";

// What the token answers when our sessions or login were dropped underneath us.
const SESSION_LOST = /CKR_SESSION_HANDLE_INVALID|CKR_SESSION_CLOSED|CKR_USER_NOT_LOGGED_IN|CKR_SESSION_COUNT/;
const HANDLE_STALE = /CKR_OBJECT_HANDLE_INVALID|CKR_KEY_HANDLE_INVALID/;
/**
 * The most signatures one session carries per trip to a signing thread: enough to keep the
 * threads busy under load, few enough that the last in a chain does not wait long (a P-256
 * signature on SoftHSM takes ~75 µs).
 */
const MAX_CHAIN = 16;
const RW_SESSION = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;

interface WaitingSignature {
  input: Buffer;
  resolve(signature: Buffer): void;
  reject(error: unknown): void;
}

interface OpenTokenOptions {
  modulePath: string;
  softhsmConf?: string;
  label: string;
  pin: string;
  /** sessions kept open for concurrent signing; PKCS#11 allows one operation per session */
  sessions?: number;
}

/**
 * Logs the user in on `session`. PKCS#11 login is per application and token, so a second
 * C_Login in this process answers CKR_USER_ALREADY_LOGGED_IN whatever PIN it is given:
 * the PIN of the login this process made is remembered (as a digest) to refuse a
 * different one rather than let it ride on the earlier login.
 */
function loginUser(module: Pkcs11Module, label: string, session: graphene.Session, pin: string): void {
  const presented = createHash("sha256").update(pin).digest();
  try {
    session.login(pin, graphene.UserType.USER);
  } catch (error) {
    if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
    const known = module.loggedInPins.get(label);
    if (known && !timingSafeEqual(known, presented)) throw new HsmError("bad_pin", `logging in to token '${label}': the token rejected the PIN`);
    return;
  }
  module.loggedInPins.set(label, presented);
}

/**
 * A logged-in PKCS#11 token with a pool of sessions: the PKCS#11 `KeyManager`. Each
 * signature borrows a session for C_SignInit + C_Sign and returns it, so any number of
 * callers may sign at once.
 */
export class Token implements KeyManager {
  private idle: graphene.Session[] = [];
  private waiters: Array<(session: graphene.Session) => void> = [];
  private closed = false;

  private constructor(
    private readonly module: Pkcs11Module,
    readonly label: string,
    private readonly sessions: graphene.Session[],
    // Kept to log in again after the token drops our sessions (HSM restart, network HSM
    // failover); it lives in this process's memory only, as the token's PIN must anyway.
    private readonly pin: string,
  ) {
    this.idle = [...sessions];
  }

  static open(options: OpenTokenOptions): Token {
    const module = Pkcs11Module.load(options.modulePath, { softhsmConf: options.softhsmConf });
    const slot = module.slotOf(options.label);
    if (!slot) throw new HsmError("token_not_found", `no initialised token labelled '${options.label}' in ${options.modulePath}`);
    const count = Math.max(1, options.sessions ?? 4);
    const sessions: graphene.Session[] = [];
    try {
      for (let i = 0; i < count; i++) sessions.push(slot.open(RW_SESSION));
      loginUser(module, options.label, sessions[0]!, options.pin);
    } catch (error) {
      for (const s of sessions) s.close();
      throw describePkcs11Error(error, `opening token '${options.label}'`);
    }
    return new Token(module, options.label, sessions, options.pin);
  }

  private async acquire(): Promise<graphene.Session> {
    if (this.closed) throw new HsmError("token_unavailable", `token '${this.label}' is closed`);
    const session = this.idle.pop();
    if (session !== undefined) return session;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(session: graphene.Session): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(session);
    else this.idle.push(session);
  }

  /**
   * Runs `fn` on a pooled session. If the token says the session or login is gone, the
   * session is replaced by a fresh, logged-in one and `fn` runs once more; a second
   * failure is reported as the token being unavailable.
   */
  private async withSession<T>(fn: (session: graphene.Session) => Promise<T> | T): Promise<T> {
    let session = await this.acquire();
    try {
      return await fn(session);
    } catch (error) {
      if (!SESSION_LOST.test(String(error))) throw error;
      session = this.replaceSession(session);
      return await fn(session);
    } finally {
      this.release(session);
    }
  }

  private replaceSession(lost: graphene.Session): graphene.Session {
    try {
      lost.close();
    } catch {
      // already gone: that is why we are here
    }
    const slot = this.module.slotOf(this.label);
    if (!slot) throw new HsmError("token_unavailable", `token '${this.label}' is no longer present`);
    let fresh: graphene.Session;
    try {
      fresh = slot.open(RW_SESSION);
      loginUser(this.module, this.label, fresh, this.pin);
    } catch (error) {
      throw describePkcs11Error(error, `reconnecting to token '${this.label}'`);
    }
    this.sessions[this.sessions.indexOf(lost)] = fresh;
    return fresh;
  }

  private ownAddress(uri: string): { object: string; id?: Buffer } {
    const address = parseKeyUri(uri);
    if (address.token !== this.label) throw new HsmError("key_not_found", `key ${uri} is not on token '${this.label}'`);
    return address;
  }

  /** Generates a key pair on the token: private half sensitive and never extractable. */
  async generateKey(objectLabel: string, algorithm: KeyAlgorithm): Promise<KeyInfo> {
    if (await this.findPrivateKey(objectLabel)) throw new HsmError("token_exists", `token '${this.label}' already holds a key labelled '${objectLabel}'`);
    const id = randomBytes(8);
    const common = { token: true, label: objectLabel, id };
    const publicTemplate: graphene.ITemplate = { ...common, verify: true, private: false, encrypt: false, wrap: false };
    const privateTemplate: graphene.ITemplate = {
      ...common,
      private: true,
      sensitive: true,
      extractable: false,
      sign: true,
      decrypt: false,
      unwrap: false,
      derive: false,
    };
    let mechanism: graphene.KeyGenMechanism;
    if (algorithm.startsWith("ECDSA")) {
      mechanism = graphene.KeyGenMechanism.EC;
      publicTemplate.paramsEC = EC_PARAMS[algorithm]!;
    } else {
      mechanism = graphene.KeyGenMechanism.RSA;
      publicTemplate.modulusBits = Number(algorithm.slice(4));
      publicTemplate.publicExponent = Buffer.from([1, 0, 1]);
    }
    await this.withSession(
      (session) =>
        // the callback form generates on a worker thread: an RSA-4096 key takes seconds
        new Promise<void>((resolve, reject) =>
          session.generateKeyPair(mechanism, publicTemplate, privateTemplate, (error) => {
            if (!error) return resolve();
            if (SESSION_LOST.test(String(error))) return reject(error);
            reject(describePkcs11Error(error, `generating ${algorithm} key '${objectLabel}' on token '${this.label}'`));
          }),
        ),
    );
    const info = await this.findKey(formatKeyUri({ token: this.label, object: objectLabel, id }));
    if (!info) throw new HsmError("key_not_found", `key '${objectLabel}' was generated but cannot be found`);
    return info;
  }

  /** The name this class had before `KeyManager`: `generateKey`. */
  generateKeyPair(objectLabel: string, algorithm: KeyAlgorithm): Promise<KeyInfo> {
    return this.generateKey(objectLabel, algorithm);
  }

  private findIn(session: graphene.Session, objectClass: graphene.ObjectClass, objectLabel: string, id?: Buffer): graphene.SessionObject[] {
    const template: graphene.ITemplate = { class: objectClass, label: objectLabel };
    if (id) template.id = id;
    const found = session.find(template);
    return Array.from({ length: found.length }, (_, i) => found.items(i));
  }

  private uniquePrivateKey(session: graphene.Session, objectLabel: string, id?: Buffer): graphene.PrivateKey | undefined {
    const found = this.findIn(session, graphene.ObjectClass.PRIVATE_KEY, objectLabel, id);
    if (found.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${found.length} keys labelled '${objectLabel}'; key URIs must be unique`);
    return found[0]?.toType<graphene.PrivateKey>();
  }

  private async findPrivateKey(objectLabel: string, id?: Buffer): Promise<graphene.PrivateKey | undefined> {
    return this.withSession((session) => this.uniquePrivateKey(session, objectLabel, id));
  }

  /** Algorithm, public key and protection flags of a private key, read from the token. */
  private describe(session: graphene.Session, key: graphene.SessionObject, uri: string): KeyInfo {
    const attrs = key.getAttribute({ keyType: null, label: null, id: null, sensitive: null, extractable: null, alwaysSensitive: null, neverExtractable: null });
    const label = attrs.label as string;
    const id = attrs.id as Buffer;
    // The public half carries the public attributes; it shares label and id.
    const publicKey = this.findIn(session, graphene.ObjectClass.PUBLIC_KEY, label, id)[0];
    if (publicKey === undefined) throw new HsmError("key_not_found", `key ${uri} has no public key object on the token`);
    let algorithm: KeyAlgorithm;
    let publicKeySpki: Buffer;
    if (attrs.keyType === graphene.KeyType.EC) {
      // By number: graphene names CKA_EC_PARAMS back as its older alias, CKA_ECDSA_PARAMS.
      const paramsHex = publicKey.getAttribute(pkcs11js.CKA_EC_PARAMS).toString("hex");
      const pointEC = publicKey.getAttribute(pkcs11js.CKA_EC_POINT);
      const match = Object.entries(EC_PARAMS).find(([, der]) => der.toString("hex") === paramsHex);
      if (!match) throw new HsmError("unsupported", `key ${uri} uses an EC curve this CA does not support`);
      algorithm = match[0] as KeyAlgorithm;
      publicKeySpki = ecPublicKeySpki(algorithm, pointEC);
    } else if (attrs.keyType === graphene.KeyType.RSA) {
      const { modulus, publicExponent } = publicKey.getAttribute({ modulus: null, publicExponent: null });
      algorithm = `RSA-${(modulus as Buffer).length * 8}` as KeyAlgorithm;
      publicKeySpki = rsaPublicKeySpki(modulus as Buffer, publicExponent as Buffer);
    } else {
      throw new HsmError("unsupported", `key ${uri} has a key type this CA does not support`);
    }
    return {
      uri: formatKeyUri({ token: this.label, object: label, id }),
      label,
      algorithm,
      publicKeySpki,
      sensitive: attrs.sensitive === true,
      extractable: attrs.extractable === true,
      alwaysSensitive: attrs.alwaysSensitive === true,
      neverExtractable: attrs.neverExtractable === true,
    };
  }

  /** The key's algorithm, public key and protection flags, read from the token. */
  async findKey(uri: string): Promise<KeyInfo | undefined> {
    const address = this.ownAddress(uri);
    return this.withSession((session) => {
      const key = this.uniquePrivateKey(session, address.object, address.id);
      return key === undefined ? undefined : this.describe(session, key, uri);
    });
  }

  /** The name this class had before `KeyManager`: `findKey`. */
  keyInfo(uri: string): Promise<KeyInfo | undefined> {
    return this.findKey(uri);
  }

  async publicKeySpki(uri: string): Promise<Buffer> {
    const info = await this.findKey(uri);
    if (!info) throw new HsmError("key_not_found", `no key ${uri} on token '${this.label}'`);
    return info.publicKeySpki;
  }

  /** Every labelled private key on the token (a key without a label has no URI). */
  async listKeys(): Promise<KeyInfo[]> {
    return this.withSession((session) => {
      const found = session.find({ class: graphene.ObjectClass.PRIVATE_KEY });
      const keys: KeyInfo[] = [];
      for (let i = 0; i < found.length; i++) {
        const key = found.items(i);
        const label = key.getAttribute("label") as string;
        if (!label) continue;
        const uri = formatKeyUri({ token: this.label, object: label });
        try {
          keys.push(this.describe(session, key, uri));
        } catch (error) {
          // a key of another kind (another application's) is not ours to list
          if (!(error instanceof HsmError && error.code === "unsupported")) throw error;
        }
      }
      return keys.sort((a, b) => a.label.localeCompare(b.label));
    });
  }

  /** A signer for the key at `uri`; the handle is looked up once and held for this process. */
  async signer(uri: string): Promise<Signer> {
    const address = this.ownAddress(uri);
    const info = await this.findKey(uri);
    if (!info) throw new HsmError("key_not_found", `no key ${uri} on token '${this.label}'`);
    let key = (await this.findPrivateKey(address.object, address.id))!;
    const hash = hashFor(info.algorithm);
    const isEc = info.algorithm.startsWith("ECDSA");
    const mechanism = isEc ? graphene.MechanismEnum.ECDSA : graphene.MechanismEnum.RSA_PKCS;
    const describe = (error: unknown) => (error instanceof HsmError || SESSION_LOST.test(String(error)) ? error : describePkcs11Error(error, `signing with ${info.uri}`));
    // Signs a chain of inputs on one session. A session lost is thrown for withSession to
    // replace it and run the chain again; a stale key handle (after the token dropped our
    // login) is looked up again by URI and the chain signed once more.
    const signChainOn = async (session: graphene.Session, chain: WaitingSignature[]) => {
      const signAll = () =>
        this.module.signThreads.signChain(
          session.handle,
          key.handle,
          mechanism,
          chain.map((waiting) => waiting.input),
        );
      let results = await signAll();
      if (results.some((result) => result instanceof Error && HANDLE_STALE.test(result.message))) {
        const found = this.uniquePrivateKey(session, address.object, address.id);
        if (found === undefined) throw new HsmError("key_not_found", `key ${info.uri} is no longer on token '${this.label}'`);
        key = found;
        results = await signAll();
      }
      const lost = results.find((result) => result instanceof Error && SESSION_LOST.test(result.message));
      if (lost) throw lost;
      results.forEach((result, i) => (result instanceof Error ? chain[i]!.reject(describe(result)) : chain[i]!.resolve(isEc ? ecdsaRawToDer(result) : result)));
    };
    // Signatures wait here for a session. Whoever gets one takes its share of those waiting
    // as one chain: under load a session then carries several signatures per trip to a
    // signing thread, instead of one trip (and one wake-up of this thread) per signature.
    const waiting: WaitingSignature[] = [];
    let chains = 0;
    const runChains = async () => {
      chains++;
      try {
        while (waiting.length > 0) {
          let chain: WaitingSignature[] | undefined;
          try {
            await this.withSession((session) => {
              chain ??= waiting.splice(0, Math.min(MAX_CHAIN, Math.ceil(waiting.length / this.sessions.length)));
              return signChainOn(session, chain);
            });
          } catch (error) {
            // the chain failed, or no session could be had (the token is closed): then nothing waiting can be signed
            for (const item of chain ?? waiting.splice(0)) item.reject(describe(error));
          }
        }
      } finally {
        chains--;
      }
    };
    const signDigest = (hashed: Buffer): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        waiting.push({ input: isEc ? hashed : Buffer.concat([DIGEST_INFO_PREFIX[hash], hashed]), resolve, reject });
        if (chains < this.sessions.length) void runChains();
      });
    const sign = (data: Buffer) => signDigest(digest(hash, data));
    return { keyUri: info.uri, algorithm: info.algorithm, publicKeySpki: info.publicKeySpki, hash, sign, signDigest };
  }

  /**
   * Destroys the key pair at `uri`: the private key and its public half (same label and
   * id). Returns how many objects were destroyed, 0 when the key is already gone, so a
   * caller that crashed after destroying and before recording it can simply call again.
   * Refuses a URI that matches more than one private key rather than guess.
   */
  async destroyKey(uri: string): Promise<number> {
    const address = this.ownAddress(uri);
    return this.withSession((session) => {
      const privateKeys = this.findIn(session, graphene.ObjectClass.PRIVATE_KEY, address.object, address.id);
      if (privateKeys.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${privateKeys.length} keys matching ${uri}; refusing to destroy any`);
      // Looked up on its own: a run interrupted between the two destroys left only this half.
      const publicKeys = this.findIn(session, graphene.ObjectClass.PUBLIC_KEY, address.object, address.id);
      if (publicKeys.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${publicKeys.length} public keys matching ${uri}; refusing to destroy any`);
      try {
        for (const object of [...privateKeys, ...publicKeys]) object.destroy();
      } catch (error) {
        if (SESSION_LOST.test(String(error))) throw error;
        throw describePkcs11Error(error, `destroying key ${uri} on token '${this.label}'`);
      }
      return privateKeys.length + publicKeys.length;
    });
  }

  /** Sessions in use and idle, for metrics and leak checks. */
  stats(): { sessions: number; idle: number; waiting: number } {
    return { sessions: this.sessions.length, idle: this.idle.length, waiting: this.waiters.length };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const session of this.sessions) {
      try {
        session.close();
      } catch {
        // already gone with the module; nothing left to release
      }
    }
  }
}
