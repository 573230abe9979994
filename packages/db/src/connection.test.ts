import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "./connection.ts";

// Against the real PostgreSQL that scripts/with-postgres.sh starts (npm test runs it).
const serverUrl = process.env.PKI_TEST_DATABASE_URL;
let pool: pg.Pool;
let admin: pg.Pool;

beforeAll(() => {
  if (!serverUrl) throw new Error("PKI_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh");
  pool = createPool({ connectionString: serverUrl, max: 1 });
  admin = createPool({ connectionString: serverUrl, max: 1 });
});

afterAll(async () => {
  await pool?.end();
  await admin?.end();
});

describe("createPool", () => {
  it("survives the server ending a checked-out connection, and serves the next query on a new one", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      // not events.once: it listens for "error" itself, which would hide the defect
      const ended = new Promise((resolve) => client.once("end", resolve));
      // What a primary restart or failover does to every connection it had.
      await admin.query("SELECT pg_terminate_backend($1)", [pid]);
      await ended;
      const failed = await client.query("SELECT 1").catch((error: Error) => error);
      expect(failed).toBeInstanceOf(Error);
      client.release(failed as Error);
      const next = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      expect(next).not.toBe(pid);
      expect(uncaught).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });
});
