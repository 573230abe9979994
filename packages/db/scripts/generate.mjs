// Runs `prisma generate` for the inventory schema. Prisma's CLI insists on locating a
// native schema engine even though generation does not use it, and these machines cannot
// download one; pointing PRISMA_SCHEMA_ENGINE_BINARY at any file satisfies the check.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const schema = path.join(root, "prisma/schema.prisma");
if (!existsSync(schema)) process.exit(0);
const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: "1", CHECKPOINT_DISABLE: "1" };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
const result = spawnSync("npx", ["--no-install", "prisma", "generate", "--schema", schema], { cwd: root, env, stdio: "inherit" });
process.exit(result.status ?? 1);
