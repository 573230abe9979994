import pkcs11js from "pkcs11js";
import { existsSync } from "node:fs";
import { HsmError, describePkcs11Error } from "./errors.ts";

export interface SlotToken {
  slotId: pkcs11js.Handle;
  label: string;
  serial: string;
  initialized: boolean;
  userPinInitialized: boolean;
}

/**
 * One loaded PKCS#11 library per process. It is initialised with CKF_OS_LOCKING_OK because
 * pkcs11js runs C_Sign on worker threads: without OS locking, concurrent signing crashes
 * SoftHSM. Finalising it would kill every session in the process, so it stays loaded
 * until `finalize()` at shutdown.
 */
export class Pkcs11Module {
  private static loaded = new Map<string, Pkcs11Module>();

  private constructor(
    readonly path: string,
    readonly api: pkcs11js.PKCS11,
  ) {}

  /**
   * `softhsmConf` is exported as SOFTHSM2_CONF for the library, which reads it once, at
   * C_Initialize; it is ignored once the module is loaded.
   */
  static load(path: string, options: { softhsmConf?: string } = {}): Pkcs11Module {
    const existing = Pkcs11Module.loaded.get(path);
    if (existing) return existing;
    // Written, not read: SoftHSM takes its configuration file only from its own process's
    // environment, once, when the module is loaded.
    if (options.softhsmConf) process.env.SOFTHSM2_CONF = options.softhsmConf;
    if (!existsSync(path)) throw new HsmError("module_not_found", `PKCS#11 module not found at ${path} (install softhsm2 or set PKCS11_MODULE)`);
    const api = new pkcs11js.PKCS11();
    try {
      api.load(path);
      api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (error) {
      throw describePkcs11Error(error, `loading PKCS#11 module ${path}`);
    }
    const module = new Pkcs11Module(path, api);
    Pkcs11Module.loaded.set(path, module);
    return module;
  }

  /** Every slot that has a token, initialised or not. */
  tokens(): SlotToken[] {
    return this.api.C_GetSlotList(true).map((slotId) => {
      const info = this.api.C_GetTokenInfo(slotId);
      return {
        slotId,
        label: info.label.trim(),
        serial: info.serialNumber.trim(),
        initialized: (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0,
        userPinInitialized: (info.flags & pkcs11js.CKF_USER_PIN_INITIALIZED) !== 0,
      };
    });
  }

  findToken(label: string): SlotToken | undefined {
    return this.tokens().find((t) => t.initialized && t.label === label);
  }

  /**
   * Initialises a new token on a free slot and sets its user PIN. Real HSMs usually have
   * their own ceremony tooling; this is what the SoftHSM quickstart and the tests use.
   */
  initToken(label: string, soPin: string, userPin: string): SlotToken {
    if (this.findToken(label)) throw new HsmError("token_exists", `a token labelled '${label}' already exists`);
    const free = this.tokens().find((t) => !t.initialized);
    if (!free) throw new HsmError("token_not_found", "no free slot to initialise a token in");
    try {
      this.api.C_InitToken(free.slotId, soPin, label.padEnd(32, " "));
      const session = this.api.C_OpenSession(free.slotId, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        this.api.C_Login(session, pkcs11js.CKU_SO, soPin);
        this.api.C_InitPIN(session, userPin);
        this.api.C_Logout(session);
      } finally {
        this.api.C_CloseSession(session);
      }
    } catch (error) {
      throw describePkcs11Error(error, `initialising token '${label}'`);
    }
    const created = this.findToken(label);
    if (!created) throw new HsmError("token_not_found", `token '${label}' was initialised but is not listed afterwards`);
    return created;
  }

  /** Only at process exit: this ends every session every part of the process holds. */
  finalize(): void {
    try {
      this.api.C_Finalize();
      this.api.close();
    } finally {
      Pkcs11Module.loaded.delete(this.path);
    }
  }
}

export { pkcs11js };
