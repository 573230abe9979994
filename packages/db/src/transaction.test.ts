import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inTransaction } from "./transaction.ts";

// Against the real PostgreSQL that scripts/with-postgres.sh starts (npm test runs it).
const serverUrl = process.env.PKI_TEST_DATABASE_URL;
const table = `tx_test_${randomBytes(6).toString("hex")}`;
let pool: pg.Pool;

const rows = async () => (await pool.query(`SELECT n FROM ${table} ORDER BY n`)).rows.map((r) => r.n as number);

beforeAll(async () => {
  if (!serverUrl) throw new Error("PKI_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh");
  pool = new pg.Pool({ connectionString: serverUrl, max: 1 });
  await pool.query(`CREATE TABLE ${table} (n int PRIMARY KEY)`);
});

afterAll(async () => {
  await pool?.query(`DROP TABLE IF EXISTS ${table}`);
  await pool?.end();
});

describe("inTransaction", () => {
  it("commits every statement of work that resolves, and returns its result", async () => {
    const result = await inTransaction(pool, async (client) => {
      await client.query(`INSERT INTO ${table} VALUES (1)`);
      await client.query(`INSERT INTO ${table} VALUES (2)`);
      return "done";
    });
    expect(result).toBe("done");
    expect(await rows()).toEqual([1, 2]);
  });

  it("rolls back all of work that throws, rethrows the same error, and leaves the connection usable", async () => {
    const failure = new Error("token refused");
    const seen = await inTransaction(pool, async (client) => {
      await client.query(`INSERT INTO ${table} VALUES (3)`);
      throw failure;
    }).catch((error: unknown) => error);
    expect(seen).toBe(failure);
    // a statement the database refuses half way undoes the first one too
    const refused = await inTransaction(pool, async (client) => {
      await client.query(`INSERT INTO ${table} VALUES (4)`);
      await client.query(`INSERT INTO ${table} VALUES (1)`); // duplicate key
    }).catch((error: { code?: string }) => error);
    expect((refused as { code?: string }).code).toBe("23505");
    // the pool's single connection is not left inside a transaction
    expect((await pool.query("SELECT now() = statement_timestamp() AS outside")).rows[0].outside).toBe(true);
    expect(await rows()).toEqual([1, 2]);
  });

  it("starts the transaction as asked", async () => {
    const isolation = await inTransaction(pool, async (client) => (await client.query("SHOW transaction_isolation")).rows[0].transaction_isolation as string, {
      isolation: "repeatable read",
      readOnly: true,
    });
    expect(isolation).toBe("repeatable read");
    const writeRefused = await inTransaction(pool, (client) => client.query(`INSERT INTO ${table} VALUES (9)`), { readOnly: true }).catch((error: { code?: string }) => error);
    expect((writeRefused as { code?: string }).code).toBe("25006"); // read_only_sql_transaction
  });
});
