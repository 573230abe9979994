import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The node arguments of package.json's start script (`node <flags> <entry>`): what `npm start` runs. */
export function npmStartArgs(): string[] {
  const script = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
  const [command, ...args] = script.trim().split(/\s+/);
  if (command !== "node") throw new Error(`the start script is not \`node …\`: ${script}`);
  return args;
}
