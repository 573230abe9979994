// The bundle `npm start` runs: built once and reused while its sources are unchanged,
// rebuilt after one changes, and each module still sees its own import.meta.url (the
// console's assets and the migrations are found relative to their modules). Beside its
// main.js it holds the API's cluster worker and the ACME validator, which
// apps/api/src/workers.ts forks from there.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { acmeValidatorEntry, apiWorkerEntry } from "../api/src/workers.ts";
import { bundle } from "./bundle.mjs";

const root = mkdtempSync(path.join(tmpdir(), "pki-bundle-"));
const cache = path.join(root, "cache");
const entry = path.join(root, "src/main.ts");
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(file: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
}

/** Every bundle compiles the API worker and the ACME validator too, from these paths under its root. */
const WORKER = "apps/api/src/worker.ts";
write(WORKER, "export const worker: string = 'the API worker';\n");
const VALIDATOR = "apps/acme-validator/src/main.ts";
write(VALIDATOR, "export const validator: string = 'the ACME validator';\n");

describe("the server bundle", () => {
  it("keeps module URLs, is reused while its sources are unchanged, and is rebuilt when one changes", async () => {
    write("src/main.ts", 'export { dir, version, where } from "./lib/where.ts";\nexport const main: string = import.meta.url;\n');
    write("src/lib/where.ts", "export const where: string = import.meta.url;\nexport const dir: string = import.meta.dirname;\nexport const version: number = 1;\n");
    const first = await bundle({ root, entry, cache });
    const built = await import(pathToFileURL(first).href);
    expect(built.main).toBe(pathToFileURL(entry).href);
    expect(built.where).toBe(pathToFileURL(path.join(root, "src/lib/where.ts")).href);
    expect(built.dir).toBe(path.join(root, "src/lib"));
    expect(built.version).toBe(1);

    const builtAt = statSync(first).mtimeMs;
    expect(await bundle({ root, entry, cache })).toBe(first);
    expect(statSync(first).mtimeMs).toBe(builtAt);

    write("src/lib/where.ts", "export const where: string = import.meta.url;\nexport const version: number = 22;\n");
    const second = await bundle({ root, entry, cache });
    expect(second).not.toBe(first);
    expect((await import(pathToFileURL(second).href)).version).toBe(22);
  });

  it("holds the API worker beside main.js, where the bundled workers.ts forks it from (and worker.ts without a bundle)", async () => {
    // The real workers.ts, imported by the bundle's entry: the bundle's own answer.
    const workers = fileURLToPath(new URL("../api/src/workers.ts", import.meta.url));
    write("src/main.ts", `export { apiWorkerEntry } from ${JSON.stringify(workers)};\n`);
    const main = await bundle({ root, entry, cache });
    const worker = path.join(path.dirname(main), "api-worker.js");
    expect(existsSync(worker)).toBe(true);
    expect(readFileSync(worker, "utf8")).toContain("the API worker");
    expect((await import(pathToFileURL(main).href)).apiWorkerEntry()).toBe(worker);
    // run as TypeScript (as here, through vitest), it forks worker.ts, which tsx loads
    expect(apiWorkerEntry()).toBe(fileURLToPath(new URL("../api/src/worker.ts", import.meta.url)));
  });

  it("holds the ACME validator beside main.js, where an API process starts its keyless child from", async () => {
    const workers = fileURLToPath(new URL("../api/src/workers.ts", import.meta.url));
    write("src/main.ts", `export { acmeValidatorEntry } from ${JSON.stringify(workers)};\n`);
    const main = await bundle({ root, entry, cache });
    const validator = path.join(path.dirname(main), "acme-validator.js");
    expect(readFileSync(validator, "utf8")).toContain("the ACME validator");
    expect((await import(pathToFileURL(main).href)).acmeValidatorEntry()).toBe(validator);
    expect(acmeValidatorEntry()).toBe(fileURLToPath(new URL("../acme-validator/src/main.ts", import.meta.url)));
  });

  it("refuses a cache it cannot write, naming it and how to run the server without it", async () => {
    write("not-a-dir", "");
    await expect(bundle({ root, entry, cache: path.join(root, "not-a-dir/cache") })).rejects.toThrow(/cannot keep the compiled server in .*not-a-dir\/cache \(ENOTDIR\).*node --import tsx /);
  });
});
