// Throwaway databases for tests and benchmarks on a real PostgreSQL server (the one
// scripts/with-postgres.sh starts and names in PKI_TEST_DATABASE_URL): unit tests here and
// in other packages, test/support and bench/. Test code only: no role imports it.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Inventory } from "./index.ts";

export interface ThrowawayDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the PostgreSQL server at `serverUrl`; `drop` removes it. */
export async function createDatabase(serverUrl: string, prefix = "pki_test"): Promise<ThrowawayDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * An Inventory on a fresh database of the test server (`serverUrl`: the tests pass
 * PKI_TEST_DATABASE_URL), migrated as `pki migrate` does; `close` closes it and drops the
 * database.
 */
export async function throwawayInventory(serverUrl: string | undefined, prefix: string): Promise<{ inventory: Inventory; close(): Promise<void> }> {
  if (!serverUrl) throw new Error("PKI_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh (npm test does)");
  const database = await createDatabase(serverUrl, prefix);
  let inventory: Inventory;
  try {
    inventory = await Inventory.open({ url: database.url, embeddedDir: "", schema: "migrate", poolSize: 4 });
  } catch (error) {
    await database.drop();
    throw error;
  }
  return {
    inventory,
    close: async () => {
      await inventory.close();
      await database.drop();
    },
  };
}
