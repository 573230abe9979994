// Provisions a SoftHSM2 token for a CA data dir through the hsm package's key backend, for
// operators who set up tokens by hand before `pki init` (which does the same itself).
// PINs are read from files, never taken as arguments, so no process listing shows them.
//   node --import tsx packages/hsm/scripts/provision-token.ts DATA_DIR LABEL USER_PIN_FILE SO_PIN_FILE [MODULE]
import { existsSync, readFileSync } from "node:fs";
import { Pkcs11KeyBackend } from "../src/index.ts";

const [dataDir, label, pinFile, soPinFile, modulePath = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((m) => existsSync(m))] = process.argv.slice(2);
if (!dataDir || !label || !pinFile || !soPinFile) {
  console.error("usage: provision-token.ts DATA_DIR LABEL USER_PIN_FILE SO_PIN_FILE [PKCS11_MODULE]");
  process.exit(2);
}
if (!modulePath) {
  console.error("SoftHSM2 is not installed (or name the PKCS#11 module as the fifth argument)");
  process.exit(1);
}
const readPin = (file: string, what: string) => {
  const pin = readFileSync(file, "utf8").trim();
  if (!pin) throw new Error(`${what} file ${file} is empty`);
  return pin;
};
try {
  const backend = new Pkcs11KeyBackend({ modulePath, softhsmDataDir: dataDir });
  const result = await backend.provision({ label, pin: readPin(pinFile, "user PIN"), soPin: readPin(soPinFile, "SO PIN") });
  console.log(result.created ? `token '${label}' initialised in ${dataDir}` : `token '${label}' already exists in ${dataDir}; left as it was`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
