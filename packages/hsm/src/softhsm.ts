import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const TEMPLATE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../hsm/softhsm2.conf.template");

/**
 * Writes `softhsm2.conf` for a data dir from hsm/softhsm2.conf.template, with its token
 * store inside the data dir. Must run before the module is loaded: SoftHSM reads
 * SOFTHSM2_CONF once, at C_Initialize.
 */
export function softhsmConfig(dataDir: string): string {
  const tokenDir = path.join(dataDir, "tokens");
  const confPath = path.join(dataDir, "softhsm2.conf");
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  if (!existsSync(confPath)) {
    const text = readFileSync(TEMPLATE, "utf8").replaceAll("@TOKEN_DIR@", tokenDir);
    writeFileSync(confPath, text, { mode: 0o600 });
  }
  return confPath;
}
