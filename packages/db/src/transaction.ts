import type pg from "pg";

export interface TransactionOptions {
  /** PostgreSQL's default, read committed, unless set */
  isolation?: "read committed" | "repeatable read" | "serializable";
  /** refuses writes (a snapshot read) */
  readOnly?: boolean;
}

const beginStatement = ({ isolation, readOnly }: TransactionOptions): string =>
  ["BEGIN", isolation ? `ISOLATION LEVEL ${isolation.toUpperCase()}` : "", readOnly ? "READ ONLY" : ""].filter(Boolean).join(" ");

/**
 * Runs `work` as one transaction on one pooled connection: COMMIT when it resolves,
 * ROLLBACK when it throws (the error is rethrown as it is). Work that decides to change
 * nothing just returns: committing nothing is the same as rolling back. A connection
 * whose ROLLBACK fails is discarded rather than returned to the pool mid-transaction.
 * The stores' one transaction helper: every multi-statement write (and every read that
 * needs one snapshot) goes through here, and its work queries `client` (sql.ts).
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(beginStatement(options));
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackFailed: Error) => {
      broken = rollbackFailed;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
