import { randomBytes } from "node:crypto";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * Writes a secret readable by its owner only. The bytes go to a new file created 0600 and
 * renamed over the target, so an existing file's looser mode (a 0644 file from an earlier
 * run, say) never applies to the secret, not even for a moment.
 */
export function writeSecretFile(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomically(file, content, 0o600);
}

/** Writes `content` to a new file of `mode` renamed over `file`: a reader sees the old file or the whole new one, never a part. */
export function writeFileAtomically(file: string, content: string, mode: number): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(temporary, content, { mode, flag: "wx" });
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
