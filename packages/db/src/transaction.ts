import type pg from "pg";

/**
 * Runs `work` as one transaction on one pooled connection: COMMIT when it resolves,
 * ROLLBACK when it throws (the error is rethrown as it is). Work that decides to change
 * nothing just returns: committing nothing is the same as rolling back. A connection
 * whose ROLLBACK fails is discarded rather than returned to the pool mid-transaction.
 * Every multi-statement write of this package's raw-SQL stores goes through here.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
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
