// What every command shares: the configuration (read once, on first use, so `--help` needs
// none), who the operator is, and the inventory's or the CA's lifetime around a command.
import path from "node:path";
import { loadConfig, type Config } from "@pki/config";
import { CaError } from "@pki/x509";
import { openCa, openInventory, type CaRuntime } from "@pki/authority";
import type { Inventory } from "@pki/db";

let config: Config;
export const cfg = (): Config => (config ??= loadConfig());
export const operator = () => `cli:${cfg().operator}`;
/** A file named on the command line, relative to where the user ran the command. */
export const fromCaller = (file: string) => path.resolve(cfg().invocationDir, file);

/** Opens the inventory for `use` and closes it afterwards, whether `use` succeeds or throws. */
export async function withInventory<T>(config: Config, use: (inventory: Inventory) => Promise<T>): Promise<T> {
  const inventory = await openInventory(config);
  try {
    return await use(inventory);
  } finally {
    await inventory.close();
  }
}

/** Opens the CA (inventory and token) for `use` and closes it afterwards, whether `use` succeeds or throws. */
export async function withCa<T>(config: Config, use: (ca: CaRuntime) => Promise<T>): Promise<T> {
  const ca = await openCa(config);
  try {
    return await use(ca);
  } finally {
    await ca.close();
  }
}

/** Reads a secret from the terminal without echoing it. */
function promptSecret(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = process.stdin;
    process.stderr.write(question);
    input.setRawMode(true);
    input.resume();
    let value = "";
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          input.setRawMode(false);
          input.pause();
          input.off("data", onData);
          process.stderr.write("\n");
          return resolve(value);
        }
        if (ch === "\u0003") {
          input.setRawMode(false);
          return reject(new CaError("bad_request", "cancelled"));
        }
        value = ch === "\u007f" ? value.slice(0, -1) : value + ch;
      }
    };
    input.on("data", onData);
  });
}

/**
 * Configuration for a ceremony that needs the root key: the root PIN comes from
 * PKI_ROOT_PIN / PKI_ROOT_PIN_FILE, or is asked for on the terminal, for this command only.
 */
export async function ceremonyConfig(): Promise<Config> {
  const c = cfg();
  if (!c.hsm.root.pin && process.stdin.isTTY) c.hsm.root.pin = await promptSecret(`PIN of the root token '${c.hsm.root.label}': `);
  return c;
}
