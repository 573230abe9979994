// Real parts for end-to-end tests: a fresh data dir with its own SoftHSM token, a fresh
// database on the real PostgreSQL server (PKI_TEST_DATABASE_URL, started by
// scripts/with-postgres.sh) or the embedded one, and the CA opened on top.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, type Config } from "@pki/config";
import { initCa, openCa, openInventory, systemClock, type CaRuntime, type Clock } from "@pki/authority";
import { migrateDatabase, type Inventory } from "@pki/db";
import { testSettings } from "./settings.ts";
import { createDatabase } from "./databases.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function testDatabaseServerUrl(): string {
  const url = testSettings.databaseUrl;
  if (!url) throw new Error("PKI_TEST_DATABASE_URL is not set: run tests through `npm test` (scripts/with-postgres.sh starts PostgreSQL)");
  return url;
}

/** A new, empty database on the test PostgreSQL server; dropped by the returned function. */
export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  return createDatabase(testDatabaseServerUrl());
}

export interface TestEnvOptions {
  database?: "postgres" | "embedded";
  /** extra environment for the CA (e.g. PKI_ISSUING_KEY_ALGORITHM) */
  env?: Record<string, string>;
}

export interface TestEnv {
  dataDir: string;
  /** the environment a CLI or server child process of this CA needs */
  env: Record<string, string>;
  config(): Config;
  cleanup(): Promise<void>;
}

/** A data dir and database, nothing initialised yet. */
export async function testEnv(options: TestEnvOptions = {}): Promise<TestEnv> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "pki-e2e-"));
  const db = options.database === "embedded" ? undefined : await freshDatabase();
  const env: Record<string, string> = {
    PKI_DATA_DIR: dataDir,
    PKI_LOG_LEVEL: "warn",
    ...(db ? { DATABASE_URL: db.url } : {}),
    ...options.env,
  };
  return {
    dataDir,
    env,
    config: () => loadConfig(env),
    cleanup: async () => {
      await db?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestCa extends TestEnv {
  runtime: CaRuntime;
  inventory: Inventory;
  adminToken: string;
}

/** An initialised CA (tokens, root, intermediate) opened in this process. */
export async function startTestCa(options: TestEnvOptions & { clock?: Clock } = {}): Promise<TestCa> {
  const base = await testEnv(options);
  const adminToken = `test-admin-${randomBytes(12).toString("hex")}`;
  base.env.PKI_BOOTSTRAP_ADMIN_TOKEN = adminToken;
  const config = base.config();
  // What `pki init` does first: roles only check the schema.
  if (config.databaseUrl) await migrateDatabase({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir });
  const inventory = await openInventory(config, "server");
  await initCa(config, inventory, options.clock ?? systemClock, "test:init");
  const runtime = await openCa(config, options.clock ?? systemClock, inventory);
  return {
    ...base,
    runtime,
    inventory,
    adminToken,
    cleanup: async () => {
      await runtime.close();
      await inventory.close();
      await base.cleanup();
    },
  };
}
