import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { SqlRunner } from "./connection.ts";

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../prisma/migrations");
/** The PostgreSQL users per role and their grants; re-applied after migrations by `pki migrate --grant-roles`. */
export const ROLES_SQL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../prisma/roles.sql");

/** The database lacks migrations this code needs. Roles never migrate: the operator runs `pki migrate`. */
export class SchemaBehindError extends Error {
  constructor(
    readonly missing: string[],
    options?: ErrorOptions,
  ) {
    super(
      `the database schema is behind this version (${missing.length} migration(s) not applied, first ${missing[0]}): run \`pki migrate\` with the migration user's DATABASE_URL, then start this process again`,
      options,
    );
  }
}

// Same table and checksum (sha256 of the file) as `prisma migrate deploy`, so an operator
// can switch between the CLI and the in-process migrator on the same database.
const MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Any fixed 64-bit key: serialises migrators of several processes starting at once.
const MIGRATION_LOCK_KEY = 72707369;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, "migration.sql")))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

/**
 * Applies every migration not yet recorded, each in its own transaction. Returns their
 * names. `sql` must be a single connection: the advisory lock belongs to the session.
 */
export async function applyMigrations(sql: SqlRunner, dir = MIGRATIONS_DIR): Promise<string[]> {
  const applied: string[] = [];
  await sql.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
  try {
    await sql.exec(MIGRATIONS_TABLE);
    const done = await sql.query<{ migration_name: string; checksum: string }>(`SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`);
    const doneByName = new Map(done.map((row) => [row.migration_name, row.checksum]));
    for (const migration of listMigrations(dir)) {
      const recorded = doneByName.get(migration.name);
      if (recorded !== undefined) {
        if (recorded !== migration.checksum) throw new Error(`migration ${migration.name} was changed after it was applied (checksum differs)`);
        continue;
      }
      if (!/^[A-Za-z0-9_]+$/.test(migration.name)) throw new Error(`migration folder name '${migration.name}' must be letters, digits and _`);
      // The migration and its record commit together: a crash leaves neither or both.
      const record = `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('${randomUUID()}', '${migration.checksum}', now(), '${migration.name}', 1);`;
      try {
        await sql.exec(`BEGIN;\n${migration.sql}\n;\n${record}\nCOMMIT;`);
      } catch (error) {
        await sql.exec("ROLLBACK").catch(() => {});
        throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`);
      }
      applied.push(migration.name);
    }
  } finally {
    await sql.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
  }
  return applied;
}

/**
 * Checks without writing anything that every migration this code knows is applied, with
 * the checksum it has here. A database ahead of this code (a newer release migrated it
 * first, as in a rolling upgrade) is accepted: migrations only ever add.
 */
export async function verifySchema(sql: SqlRunner, dir = MIGRATIONS_DIR): Promise<void> {
  const [table] = await sql.query<{ present: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
  const done = table?.present
    ? await sql.query<{ migration_name: string; checksum: string }>(`SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`)
    : [];
  const doneByName = new Map(done.map((row) => [row.migration_name, row.checksum]));
  const known = listMigrations(dir);
  for (const migration of known) {
    const recorded = doneByName.get(migration.name);
    if (recorded !== undefined && recorded !== migration.checksum) throw new Error(`migration ${migration.name} in the database differs from this version's (checksum differs)`);
  }
  const missing = known.filter((m) => !doneByName.has(m.name)).map((m) => m.name);
  if (missing.length) throw new SchemaBehindError(missing);
}

/** Creates the per-role PostgreSQL users that do not exist yet (NOLOGIN) and sets exactly their grants. */
export async function applyRoleGrants(sql: SqlRunner, file = ROLES_SQL): Promise<void> {
  await sql.exec(readFileSync(file, "utf8"));
}
