// A fresh PGlite data dir costs an initdb inside WebAssembly (2-10 s on a 2-core machine)
// plus every migration. `npm install` builds one template, already migrated, and a first
// start copies it: a cleanly closed PostgreSQL data dir is position-independent, so a copy
// is as good as a new cluster. The template is keyed by the PGlite version and the
// migrations, so an upgrade never copies a stale schema (it falls back to initdb).
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations, listMigrations } from "./migrate.ts";

const TEMPLATE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../embedded-template");

/** PGlite's version (its package.json is not exported: found beside its entry point). */
function pgliteVersion(): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version: string };
      if (name === "@electric-sql/pglite") return version;
    }
    if (path.dirname(dir) === dir) throw new Error("cannot find @electric-sql/pglite's package.json");
    dir = path.dirname(dir);
  }
}

function templateKey(): string {
  const pglite = pgliteVersion();
  const hash = createHash("sha256").update(`pglite ${pglite}\n`);
  for (const migration of listMigrations()) hash.update(`${migration.name} ${migration.checksum}\n`);
  return hash.digest("hex").slice(0, 16);
}

const templateDir = (key: string) => path.join(TEMPLATE_ROOT, key);

/** Copies the install-time template into `dataDir` if one matches this code; false if none does. */
export function copyEmbeddedTemplate(dataDir: string): boolean {
  const source = templateDir(templateKey());
  if (!existsSync(path.join(source, "PG_VERSION"))) return false;
  cpSync(source, dataDir, { recursive: true });
  return true;
}

/**
 * Builds the template for this code (idempotent): `npm install` runs it, and so does a
 * first start that finds none (after a migration was added), so later first starts are fast.
 */
export async function buildEmbeddedTemplate(): Promise<string> {
  const key = templateKey();
  const target = templateDir(key);
  if (existsSync(path.join(target, "PG_VERSION"))) return target;
  // Built aside and renamed, so an interrupted install never leaves half a template.
  const building = `${TEMPLATE_ROOT}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(TEMPLATE_ROOT, { recursive: true });
  try {
    const [{ PGlite }, { pg_trgm }] = await Promise.all([import("@electric-sql/pglite"), import("@electric-sql/pglite/contrib/pg_trgm")]);
    const db = await PGlite.create(building, { extensions: { pg_trgm } });
    try {
      await applyMigrations({ exec: async (sql) => void (await db.exec(sql)), query: async (sql, params) => (await db.query<never>(sql, params as unknown[])).rows });
    } finally {
      await db.close();
    }
    renameSync(building, target);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    // another process may have built the same template meanwhile: theirs is as good as ours
    if (!existsSync(path.join(target, "PG_VERSION"))) throw error;
  }
  // Older templates belong to older code (other keys): nothing copies them any more.
  for (const entry of readdirSync(TEMPLATE_ROOT)) if (entry !== key) rmSync(path.join(TEMPLATE_ROOT, entry), { recursive: true, force: true });
  return target;
}
