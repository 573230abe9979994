// A CA of our own for one benchmark: a fresh database on the run's PostgreSQL server, a
// data dir with its own SoftHSM token, the ceremony run (root and P-256 intermediate on
// the token). `open` gives the runtime in this process; `env` starts our apps as children.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { loadConfig, type Config } from "@pki/config";
import { initCa, openCa, openInventory, systemClock, type CaRuntime } from "@pki/authority";
import { migrateDatabase } from "@pki/db";
import { createDatabase as createTestDatabase } from "../../test/support/databases.ts";

export interface BenchCa {
  dataDir: string;
  dbUrl: string;
  env: Record<string, string>;
  adminToken: string;
  config: Config;
  issuerId: string;
  /** the runtime in this process (opened by createCa, closed by cleanup) */
  runtime: CaRuntime;
  cleanup(): Promise<void>;
}

export async function createDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  return createTestDatabase(serverUrl, "pki_bench");
}

export async function createCa(serverUrl: string, tmp: string, extraEnv: Record<string, string> = {}): Promise<BenchCa> {
  const db = await createDatabase(serverUrl);
  const dataDir = mkdtempSync(path.join(tmp, "ca-"));
  const adminToken = `bench-admin-${randomBytes(12).toString("hex")}`;
  const env: Record<string, string> = {
    PKI_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    PKI_LOG_LEVEL: "error",
    PKI_BOOTSTRAP_ADMIN_TOKEN: adminToken,
    PKI_BIND: "127.0.0.1",
    ...extraEnv,
  };
  const config = loadConfig(env);
  await migrateDatabase({ url: db.url, embeddedDir: config.embeddedDatabaseDir });
  const inventory = await openInventory(config, "server");
  await initCa(config, inventory, systemClock, "bench:init");
  const runtime = await openCa(config, systemClock, inventory);
  const issuerId = runtime.keyring.active().record.id;
  return {
    dataDir,
    dbUrl: db.url,
    env,
    adminToken,
    config,
    issuerId,
    runtime,
    cleanup: async () => {
      await runtime.close().catch(() => {});
      await inventory.close().catch(() => {});
      await db.drop().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The environment for one of our apps as a child process (its own ports). */
export function childEnv(ca: BenchCa, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...ca.env, ...extra };
  delete env.SOFTHSM2_CONF; // each data dir has its own; the config finds it
  return env;
}
