import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv } from "./settings.ts";

/** A new, empty database on a PostgreSQL server; dropped by the returned function. Tests and benchmarks share it. */
export { createDatabase } from "@pki/db/testing";

export const DATABASE_ROLES = ["migrate", "api", "ocsp", "crl", "scheduler", "validator"] as const;
export type DatabaseRole = (typeof DATABASE_ROLES)[number];

/**
 * The per-role PostgreSQL users as compose creates them: deploy/postgres/create-role-users.sh
 * run as the superuser with a password file per role in `secretsDir` (written here), so
 * pki_migrate owns the database. Users are per server: test files share them (the script
 * only resets passwords when they exist). Returns each role's DATABASE_URL; `pki migrate
 * --grant-roles` (as migrate) then sets the grants.
 */
export function createRoleUsers(databaseUrl: string, secretsDir: string): Record<DatabaseRole, string> {
  const url = new URL(databaseUrl);
  const urls = {} as Record<DatabaseRole, string>;
  for (const role of DATABASE_ROLES) {
    const password = `${role}-${randomBytes(9).toString("hex")}`;
    writeFileSync(path.join(secretsDir, `db_password_${role}`), `${password}\n`, { mode: 0o600 });
    const own = new URL(url);
    own.username = `pki_${role}`;
    own.password = password;
    urls[role] = own.toString();
  }
  const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy/postgres/create-role-users.sh");
  const result = spawnSync("sh", [script], {
    env: {
      PATH: childEnv().PATH,
      POSTGRES_USER: decodeURIComponent(url.username),
      POSTGRES_DB: url.pathname.slice(1),
      PGHOST: url.hostname,
      PGPORT: url.port || "5432",
      ...(url.password ? { PGPASSWORD: decodeURIComponent(url.password) } : {}),
      PKI_SECRETS_DIR: secretsDir,
    },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`create-role-users.sh failed: ${result.stderr}`);
  return urls;
}
