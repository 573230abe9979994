import graphene from "graphene-pk11";
import pkcs11js from "pkcs11js";
import { existsSync } from "node:fs";
import { HsmError, describePkcs11Error } from "./errors.ts";
import { SignThreads } from "./sign-threads.ts";

export interface SlotToken {
  slotId: pkcs11js.Handle;
  label: string;
  serial: string;
  initialized: boolean;
  userPinInitialized: boolean;
}

/**
 * One loaded PKCS#11 library per process, through graphene-pk11. It is initialised with
 * CKF_OS_LOCKING_OK because signatures are made on threads of their own (SignThreads): without OS locking,
 * concurrent signing crashes SoftHSM. Finalising it would kill every session in the
 * process, so it stays loaded until `finalize()` at shutdown.
 */
export class Pkcs11Module {
  private static loaded = new Map<string, Pkcs11Module>();
  /** token label → SHA-256 of the user PIN this process logged in with (see Token) */
  readonly loggedInPins = new Map<string, Buffer>();
  /** where signatures are made, off the event loop */
  readonly signThreads: SignThreads;

  private constructor(
    readonly path: string,
    readonly module: graphene.Module,
  ) {
    this.signThreads = new SignThreads(path);
  }

  /** The pkcs11js binding under graphene (the same library instance), for the raw-rate ceiling and tests. */
  get api(): pkcs11js.PKCS11 {
    return this.module.lib;
  }

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
    let module: graphene.Module;
    try {
      module = graphene.Module.load(path);
      module.initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (error) {
      throw describePkcs11Error(error, `loading PKCS#11 module ${path}`);
    }
    const loaded = new Pkcs11Module(path, module);
    Pkcs11Module.loaded.set(path, loaded);
    return loaded;
  }

  /** Every slot that has a token, initialised or not. */
  tokens(): SlotToken[] {
    const slots = this.module.getSlots(true);
    const found: SlotToken[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      const info = slot.getToken();
      found.push({
        slotId: slot.handle,
        label: info.label.trim(),
        serial: info.serialNumber.trim(),
        initialized: (info.flags & graphene.TokenFlag.TOKEN_INITIALIZED) !== 0,
        userPinInitialized: (info.flags & graphene.TokenFlag.USER_PIN_INITIALIZED) !== 0,
      });
    }
    return found;
  }

  findToken(label: string): SlotToken | undefined {
    return this.tokens().find((t) => t.initialized && t.label === label);
  }

  /** The graphene slot holding the initialised token `label`. */
  slotOf(label: string): graphene.Slot | undefined {
    const token = this.findToken(label);
    if (!token) return undefined;
    return new graphene.Slot(token.slotId, this.module, this.module.lib);
  }

  /**
   * Initialises a new token on a free slot and sets its user PIN. Real HSMs usually have
   * their own ceremony tooling; this is what SoftHSM provisioning and the tests use.
   */
  initToken(label: string, soPin: string, userPin: string): SlotToken {
    if (this.findToken(label)) throw new HsmError("token_exists", `a token labelled '${label}' already exists`);
    const free = this.tokens().find((t) => !t.initialized);
    if (!free) throw new HsmError("token_not_found", "no free slot to initialise a token in");
    try {
      const slot = new graphene.Slot(free.slotId, this.module, this.module.lib);
      // pkcs11js's C_InitToken returns nothing, which graphene's Slot.initToken cannot unpad
      this.module.lib.C_InitToken(free.slotId, soPin, label.padEnd(32, " "));
      const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
      try {
        session.login(soPin, graphene.UserType.SO);
        session.initPin(userPin);
        session.logout();
      } finally {
        session.close();
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
    this.signThreads.close();
    try {
      this.module.finalize();
      this.module.close();
    } finally {
      Pkcs11Module.loaded.delete(this.path);
    }
  }
}

export { pkcs11js, graphene };
