import type pg from "pg";
import { execute, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";

/** A live operator console session, as the API needs it on each request. */
export interface ConsoleSessionRecord {
  operator: string;
  csrfToken: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

export interface SessionLimits {
  /** a session unused for this long is over */
  idleSeconds: number;
  /** live sessions one operator may hold; creating one more drops their oldest */
  maxPerOperator: number;
}

const COLUMNS = `operator, csrf_token AS "csrfToken", created_at AS "createdAt", last_seen_at AS "lastSeenAt", expires_at AS "expiresAt"`;

/**
 * Operator console sessions, keyed by the SHA-256 of the cookie value (the caller hashes
 * it): the value never reaches the database, so a dump holds no usable session. A row is
 * live while its absolute expiry is ahead, it was used within the idle timeout, and its
 * operator still has a live admin token. The table stays small: expired rows are removed
 * on every login and by `sweep`, and each operator holds at most `maxPerOperator` rows.
 */
export class ConsoleSessionStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(session: { idHash: string; operator: string; csrfToken: string; now: Date; expiresAt: Date }, limits: SessionLimits): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await execute(client, `DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $1::timestamptz - make_interval(secs => $2)`, [session.now, limits.idleSeconds]);
      await execute(client, `INSERT INTO console_sessions (id_hash, operator, csrf_token, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`, [
        session.idHash,
        session.operator,
        session.csrfToken,
        session.now,
        session.expiresAt,
      ]);
      // Newest first; everything past the limit goes (the oldest sessions of this operator).
      await execute(
        client,
        `DELETE FROM console_sessions WHERE id_hash IN (
           SELECT id_hash FROM console_sessions WHERE operator = $1 ORDER BY created_at DESC, id_hash OFFSET $2)`,
        [session.operator, limits.maxPerOperator],
      );
    });
  }

  /**
   * The live session with this hash, its last use moved to `now`; undefined (and the row
   * removed) when it is over or its operator's admin token has been revoked.
   */
  async use(idHash: string, now: Date, idleSeconds: number): Promise<ConsoleSessionRecord | undefined> {
    const session = await queryOne<ConsoleSessionRecord>(
      this.pool,
      `UPDATE console_sessions s SET last_seen_at = $2
       WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $2::timestamptz - make_interval(secs => $3)
         AND EXISTS (SELECT 1 FROM admin_tokens a WHERE a.name = s.operator AND a.revoked_at IS NULL)
       RETURNING ${COLUMNS}`,
      [idHash, now, idleSeconds],
    );
    if (session) return session;
    await execute(this.pool, `DELETE FROM console_sessions WHERE id_hash = $1`, [idHash]);
    return undefined;
  }

  /** Ends one session (logout). True when there was one. */
  async remove(idHash: string): Promise<boolean> {
    return (await execute(this.pool, `DELETE FROM console_sessions WHERE id_hash = $1`, [idHash])) > 0;
  }

  /** Ends every session of an operator; returns how many there were. */
  async removeOperator(operator: string): Promise<number> {
    return execute(this.pool, `DELETE FROM console_sessions WHERE operator = $1`, [operator]);
  }

  /** Removes sessions that are over; returns how many. */
  async sweep(now: Date, idleSeconds: number): Promise<number> {
    return execute(this.pool, `DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $1::timestamptz - make_interval(secs => $2)`, [now, idleSeconds]);
  }

  /** Rows in the table, live or not (for tests and metrics). */
  async count(operator?: string): Promise<number> {
    const row = await queryOne<{ n: bigint }>(
      this.pool,
      operator === undefined ? `SELECT count(*) AS n FROM console_sessions` : `SELECT count(*) AS n FROM console_sessions WHERE operator = $1`,
      operator === undefined ? [] : [operator],
    );
    return Number(row!.n);
  }
}
