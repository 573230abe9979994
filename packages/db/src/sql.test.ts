import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Connection } from "./connection.ts";
import { execute, query, queryOne } from "./sql.ts";
import { AuditStore } from "./stores/audit.ts";
import { createDatabase, type ThrowawayDatabase } from "./testing.ts";
import { inTransaction } from "./transaction.ts";

// Against the real PostgreSQL that scripts/with-postgres.sh starts (npm test runs it).
const serverUrl = process.env.PKI_TEST_DATABASE_URL;
let database: ThrowawayDatabase;
let connection: Connection;

beforeAll(async () => {
  if (!serverUrl) throw new Error("PKI_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh");
  database = await createDatabase(serverUrl, "pki_sql_test");
  connection = await connect({ url: database.url, embeddedDir: "", schema: "migrate", poolSize: 2 });
});

afterAll(async () => {
  await connection?.close();
  await database?.drop();
});

describe("the stores' query helper", () => {
  it("types int8 values as bigint (as the generated model types have them), leaving the pool's own defaults alone", async () => {
    expect(await queryOne<{ n: bigint; big: bigint }>(connection.pool, "SELECT count(*) AS n, 9007199254740993::int8 AS big FROM generate_series(1, 3)")).toEqual({ n: 3n, big: 9007199254740993n });
    expect((await connection.pool.query("SELECT 3::int8 AS n")).rows[0].n).toBe("3");
    expect(await connection.sql.query("SELECT 3::int8 AS n")).toEqual([{ n: "3" }]);
  });

  it("returns the rows a statement names, the first of them, or how many rows it changed", async () => {
    expect(await query<{ n: number }>(connection.pool, "SELECT n FROM generate_series(1, 3) n ORDER BY n DESC")).toEqual([{ n: 3 }, { n: 2 }, { n: 1 }]);
    expect(await queryOne(connection.pool, "SELECT 1 WHERE false")).toBeUndefined();
    const inserted = await inTransaction(connection.pool, async (client) => {
      await execute(client, "CREATE TEMP TABLE t (n int) ON COMMIT DROP");
      return execute(client, "INSERT INTO t SELECT generate_series(1, 4)");
    });
    expect(inserted).toBe(4);
  });
});

describe("audit rows on a transaction", () => {
  const recorded = async (action: string) => (await query(connection.pool, "SELECT 1 FROM audit_events WHERE action = $1", [action])).length;

  it("commit with the change they record, and roll back with it", async () => {
    await inTransaction(connection.pool, (client) => new AuditStore(client).record({ actor: "test", action: "sql-test.kept" }));
    const failure = new Error("the change failed after its audit row was written");
    const seen = await inTransaction(connection.pool, async (client) => {
      await new AuditStore(client).record({ actor: "test", action: "sql-test.undone" });
      throw failure;
    }).catch((error: unknown) => error);
    expect(seen).toBe(failure);
    expect(await recorded("sql-test.kept")).toBe(1);
    expect(await recorded("sql-test.undone")).toBe(0);
  });

  it("are read back newest first with their id as bigint", async () => {
    await new AuditStore(connection.pool).record({ actor: "test", action: "sql-test.read", target: "t1", details: { n: 1 } });
    const [row] = await new AuditStore(connection.pool).recent(1, "t1");
    expect(row).toMatchObject({ actor: "test", action: "sql-test.read", target: "t1", sourceIp: null, outcome: "ok", details: { n: 1 } });
    expect(typeof row!.id).toBe("bigint");
  });
});
