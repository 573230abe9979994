import { randomBytes } from "node:crypto";
import { Pkcs11Module, pkcs11js } from "./module.ts";
import { HsmError, describePkcs11Error } from "./errors.ts";
import { type HashName, type KeyAlgorithm, DIGEST_INFO_PREFIX, EC_PARAMS, digest, ecPublicKeySpki, ecdsaRawToDer, hashFor, rsaPublicKeySpki } from "./algorithms.ts";
import { formatKeyUri, parseKeyUri } from "./uri.ts";

// What the token answers when our sessions or login were dropped underneath us.
const SESSION_LOST = /CKR_SESSION_HANDLE_INVALID|CKR_SESSION_CLOSED|CKR_USER_NOT_LOGGED_IN|CKR_SESSION_COUNT/;

/** What everything above this package holds instead of a slot, a session or a handle. */
export interface Signer {
  readonly keyUri: string;
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER */
  readonly publicKeySpki: Buffer;
  /** the hash this key signs with (SHA-384 for P-384, SHA-256 otherwise) */
  readonly hash: HashName;
  /** Signs `data` (hashing it first) and returns the signature as X.509 carries it. */
  sign(data: Buffer): Promise<Buffer>;
  /** Signs a `hash` digest the caller computed, for data streamed through the hash rather than held whole (large CRLs). */
  signDigest(digest: Buffer): Promise<Buffer>;
}

export interface KeyInfo {
  uri: string;
  label: string;
  algorithm: KeyAlgorithm;
  publicKeySpki: Buffer;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
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
 * A logged-in token with a pool of sessions. Each signature borrows a session for
 * C_SignInit + C_Sign and returns it, so any number of callers may sign at once.
 */
export class Token {
  private idle: pkcs11js.Handle[] = [];
  private waiters: Array<(session: pkcs11js.Handle) => void> = [];
  private closed = false;

  private constructor(
    private readonly module: Pkcs11Module,
    readonly label: string,
    private readonly sessions: pkcs11js.Handle[],
    // Kept to log in again after the token drops our sessions (HSM restart, network HSM
    // failover); it lives in this process's memory only, as the token's PIN must anyway.
    private readonly pin: string,
  ) {
    this.idle = [...sessions];
  }

  static open(options: OpenTokenOptions): Token {
    const module = Pkcs11Module.load(options.modulePath, { softhsmConf: options.softhsmConf });
    const slot = module.findToken(options.label);
    if (!slot) throw new HsmError("token_not_found", `no initialised token labelled '${options.label}' in ${options.modulePath}`);
    const api = module.api;
    const count = Math.max(1, options.sessions ?? 4);
    const sessions: pkcs11js.Handle[] = [];
    try {
      for (let i = 0; i < count; i++) sessions.push(api.C_OpenSession(slot.slotId, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
      // Login is per application and token: one C_Login covers every session of the pool.
      try {
        api.C_Login(sessions[0]!, pkcs11js.CKU_USER, options.pin);
      } catch (error) {
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
      }
    } catch (error) {
      for (const s of sessions) api.C_CloseSession(s);
      throw describePkcs11Error(error, `opening token '${options.label}'`);
    }
    return new Token(module, options.label, sessions, options.pin);
  }

  private async acquire(): Promise<pkcs11js.Handle> {
    if (this.closed) throw new HsmError("token_unavailable", `token '${this.label}' is closed`);
    const session = this.idle.pop();
    if (session !== undefined) return session;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(session: pkcs11js.Handle): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(session);
    else this.idle.push(session);
  }

  /**
   * Runs `fn` on a pooled session. If the token says the session or login is gone, the
   * session is replaced by a fresh, logged-in one and `fn` runs once more; a second
   * failure is reported as the token being unavailable.
   */
  private async withSession<T>(fn: (session: pkcs11js.Handle) => Promise<T> | T): Promise<T> {
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

  private replaceSession(lost: pkcs11js.Handle): pkcs11js.Handle {
    const api = this.module.api;
    try {
      api.C_CloseSession(lost);
    } catch {
      // already gone: that is why we are here
    }
    const slot = this.module.findToken(this.label);
    if (!slot) throw new HsmError("token_unavailable", `token '${this.label}' is no longer present`);
    let fresh: pkcs11js.Handle;
    try {
      fresh = api.C_OpenSession(slot.slotId, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        api.C_Login(fresh, pkcs11js.CKU_USER, this.pin);
      } catch (error) {
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
      }
    } catch (error) {
      throw describePkcs11Error(error, `reconnecting to token '${this.label}'`);
    }
    this.sessions[this.sessions.indexOf(lost)] = fresh;
    return fresh;
  }

  /** Generates a key pair on the token: private half sensitive and never extractable. */
  async generateKeyPair(objectLabel: string, algorithm: KeyAlgorithm): Promise<KeyInfo> {
    const api = this.module.api;
    if (await this.findPrivateKey(objectLabel)) throw new HsmError("token_exists", `token '${this.label}' already holds a key labelled '${objectLabel}'`);
    const id = randomBytes(8);
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: objectLabel },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    const publicTemplate = [
      ...common,
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
    ];
    const privateTemplate = [
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ];
    let mechanism: pkcs11js.Mechanism;
    if (algorithm.startsWith("ECDSA")) {
      mechanism = { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN };
      publicTemplate.push({ type: pkcs11js.CKA_EC_PARAMS, value: EC_PARAMS[algorithm]! } as never);
    } else {
      mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN };
      publicTemplate.push({ type: pkcs11js.CKA_MODULUS_BITS, value: Number(algorithm.slice(4)) } as never);
      publicTemplate.push({ type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) } as never);
    }
    await this.withSession((session) => {
      try {
        api.C_GenerateKeyPair(session, mechanism, publicTemplate, privateTemplate);
      } catch (error) {
        throw describePkcs11Error(error, `generating ${algorithm} key '${objectLabel}' on token '${this.label}'`);
      }
    });
    const info = await this.keyInfo(formatKeyUri({ token: this.label, object: objectLabel, id }));
    if (!info) throw new HsmError("key_not_found", `key '${objectLabel}' was generated but cannot be found`);
    return info;
  }

  private find(session: pkcs11js.Handle, template: pkcs11js.Template): pkcs11js.Handle[] {
    const api = this.module.api;
    api.C_FindObjectsInit(session, template);
    try {
      return api.C_FindObjects(session, 16);
    } finally {
      api.C_FindObjectsFinal(session);
    }
  }

  private findIn(session: pkcs11js.Handle, objectLabel: string, id?: Buffer): pkcs11js.Handle | undefined {
    const template: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: objectLabel },
    ];
    if (id) template.push({ type: pkcs11js.CKA_ID, value: id });
    const found = this.find(session, template);
    if (found.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${found.length} keys labelled '${objectLabel}'; key URIs must be unique`);
    return found[0];
  }

  private async findPrivateKey(objectLabel: string, id?: Buffer): Promise<pkcs11js.Handle | undefined> {
    return this.withSession((session) => this.findIn(session, objectLabel, id));
  }

  /** The key's algorithm, public key and protection flags, read from the token. */
  async keyInfo(uri: string): Promise<KeyInfo | undefined> {
    const address = parseKeyUri(uri);
    if (address.token !== this.label) throw new HsmError("key_not_found", `key ${uri} is not on token '${this.label}'`);
    const handle = await this.findPrivateKey(address.object, address.id);
    if (handle === undefined) return undefined;
    const api = this.module.api;
    return this.withSession((session) => {
      const attrs = api.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_KEY_TYPE },
        { type: pkcs11js.CKA_ID },
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      const bool = (i: number) => (attrs[i]!.value as Buffer)[0] === 1;
      const keyType = (attrs[0]!.value as Buffer).readUInt32LE(0);
      const id = attrs[1]!.value as Buffer;
      // The public half carries the public attributes; it shares label and id.
      const publicHandle = this.find(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_LABEL, value: address.object },
        { type: pkcs11js.CKA_ID, value: id },
      ])[0];
      if (publicHandle === undefined) throw new HsmError("key_not_found", `key ${uri} has no public key object on the token`);
      let algorithm: KeyAlgorithm;
      let publicKeySpki: Buffer;
      if (keyType === pkcs11js.CKK_EC) {
        const [params, point] = api.C_GetAttributeValue(session, publicHandle, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]);
        const paramsHex = (params!.value as Buffer).toString("hex");
        const match = Object.entries(EC_PARAMS).find(([, der]) => der.toString("hex") === paramsHex);
        if (!match) throw new HsmError("unsupported", `key ${uri} uses an EC curve this CA does not support`);
        algorithm = match[0] as KeyAlgorithm;
        publicKeySpki = ecPublicKeySpki(algorithm, point!.value as Buffer);
      } else if (keyType === pkcs11js.CKK_RSA) {
        const [modulus, exponent] = api.C_GetAttributeValue(session, publicHandle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
        const bits = (modulus!.value as Buffer).length * 8;
        algorithm = `RSA-${bits}` as KeyAlgorithm;
        publicKeySpki = rsaPublicKeySpki(modulus!.value as Buffer, exponent!.value as Buffer);
      } else {
        throw new HsmError("unsupported", `key ${uri} has a key type this CA does not support`);
      }
      return {
        uri: formatKeyUri({ token: this.label, object: address.object, id }),
        label: address.object,
        algorithm,
        publicKeySpki,
        sensitive: bool(2),
        extractable: bool(3),
        alwaysSensitive: bool(4),
        neverExtractable: bool(5),
      };
    });
  }

  /** A signer for the key at `uri`; the handle is looked up once and held for this process. */
  async signer(uri: string): Promise<Signer> {
    const address = parseKeyUri(uri);
    const info = await this.keyInfo(uri);
    if (!info) throw new HsmError("key_not_found", `no key ${uri} on token '${this.label}'`);
    const handle = (await this.findPrivateKey(address.object, address.id))!;
    const api = this.module.api;
    const hash = hashFor(info.algorithm);
    const isEc = info.algorithm.startsWith("ECDSA");
    const outputSize = isEc ? (info.algorithm === "ECDSA-P384" ? 96 : 64) : Number(info.algorithm.slice(4)) / 8;
    const mechanism = { mechanism: isEc ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_RSA_PKCS };
    let keyHandle = handle;
    const signWith = async (session: pkcs11js.Handle, input: Buffer) => {
      api.C_SignInit(session, mechanism, keyHandle);
      const signature = await api.C_SignAsync(session, input, Buffer.alloc(outputSize));
      return isEc ? ecdsaRawToDer(signature) : signature;
    };
    const signDigest = (hashed: Buffer): Promise<Buffer> =>
      this.withSession(async (session) => {
        const input = isEc ? hashed : Buffer.concat([DIGEST_INFO_PREFIX[hash], hashed]);
        try {
          try {
            return await signWith(session, input);
          } catch (error) {
            // After the token dropped our login, object handles may be stale: find the key again by its URI.
            if (!/CKR_OBJECT_HANDLE_INVALID|CKR_KEY_HANDLE_INVALID/.test(String(error))) throw error;
            const found = this.findIn(session, address.object, address.id);
            if (found === undefined) throw new HsmError("key_not_found", `key ${info.uri} is no longer on token '${this.label}'`);
            keyHandle = found;
            return await signWith(session, input);
          }
        } catch (error) {
          if (error instanceof HsmError) throw error;
          throw describePkcs11Error(error, `signing with ${info.uri}`);
        }
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
    const address = parseKeyUri(uri);
    if (address.token !== this.label) throw new HsmError("key_not_found", `key ${uri} is not on token '${this.label}'`);
    const api = this.module.api;
    return this.withSession((session) => {
      const matching = (objectClass: number) => {
        const template: pkcs11js.Template = [
          { type: pkcs11js.CKA_CLASS, value: objectClass },
          { type: pkcs11js.CKA_LABEL, value: address.object },
        ];
        if (address.id) template.push({ type: pkcs11js.CKA_ID, value: address.id });
        return this.find(session, template);
      };
      const privateKeys = matching(pkcs11js.CKO_PRIVATE_KEY);
      if (privateKeys.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${privateKeys.length} keys matching ${uri}; refusing to destroy any`);
      // Looked up on its own: a run interrupted between the two destroys left only this half.
      const publicKeys = matching(pkcs11js.CKO_PUBLIC_KEY);
      if (publicKeys.length > 1) throw new HsmError("key_not_found", `token '${this.label}' holds ${publicKeys.length} public keys matching ${uri}; refusing to destroy any`);
      try {
        for (const handle of [...privateKeys, ...publicKeys]) api.C_DestroyObject(session, handle);
      } catch (error) {
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
        this.module.api.C_CloseSession(session);
      } catch {
        // already gone with the module; nothing left to release
      }
    }
  }
}
