import { randomBytes } from "node:crypto";
import { HsmError } from "./errors.ts";
import type { KeyBackend, ProvisionRequest, ProvisionedKeyStore } from "./key-manager.ts";
import { Pkcs11Module } from "./module.ts";
import { softhsmConfig } from "./softhsm.ts";
import { Token } from "./token.ts";

export interface Pkcs11BackendOptions {
  modulePath: string;
  /** SoftHSM's configuration file; see `softhsmDataDir` to have it written */
  softhsmConf?: string;
  /** with SoftHSM: write `softhsm2.conf` (tokens inside this directory) when missing, and use it */
  softhsmDataDir?: string;
  /**
   * Whether `provision` may initialise a token on a free slot. By default only with
   * SoftHSM, whose tokens are files; a real HSM's tokens come from its own ceremony tooling.
   */
  mayInitialiseTokens?: boolean;
}

export const isSoftHsm = (modulePath: string): boolean => /softhsm/i.test(modulePath);

/** PKCS#11 as a `KeyBackend`: a key store is a token, addressed by its label. */
export class Pkcs11KeyBackend implements KeyBackend {
  readonly kind = "pkcs11";
  private readonly softhsmConf: string | undefined;

  constructor(private readonly options: Pkcs11BackendOptions) {
    this.softhsmConf = options.softhsmDataDir && isSoftHsm(options.modulePath) ? softhsmConfig(options.softhsmDataDir) : options.softhsmConf;
  }

  private module(): Pkcs11Module {
    return Pkcs11Module.load(this.options.modulePath, { softhsmConf: this.softhsmConf });
  }

  /**
   * Makes sure a token labelled `request.label` exists. A new one gets the given user and
   * SO PINs, or random ones (returned once, for the caller to store). PINs are never part
   * of an error or a log line.
   */
  async provision(request: ProvisionRequest): Promise<ProvisionedKeyStore> {
    const module = this.module();
    if (module.findToken(request.label)) return { label: request.label, created: false };
    if (!(this.options.mayInitialiseTokens ?? isSoftHsm(this.options.modulePath))) {
      throw new HsmError("token_not_found", `token '${request.label}' not found in ${this.options.modulePath}; initialise it with the HSM's tooling first`);
    }
    const pin = request.pin ?? randomBytes(16).toString("hex");
    const soPin = request.soPin ?? randomBytes(16).toString("hex");
    module.initToken(request.label, soPin, pin);
    return {
      label: request.label,
      created: true,
      ...(request.pin === undefined ? { generatedPin: pin } : {}),
      ...(request.soPin === undefined ? { soPin } : {}),
    };
  }

  async open(request: { label: string; pin: string; sessions?: number }): Promise<Token> {
    return Token.open({ modulePath: this.options.modulePath, softhsmConf: this.softhsmConf, ...request });
  }
}
