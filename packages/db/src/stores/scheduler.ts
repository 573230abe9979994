// Scheduler state: job leases and due times, job runs, alerts sent once, and the
// webhook outbox. Raw SQL through the pg pool: the lease and the outbox claim are single
// conditional UPDATEs whose row counts are the whole point, and they read best as SQL.
// Every time comes from the caller's clock, so tests can travel in time.
import type pg from "pg";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";

export interface JobClaim {
  runId: bigint;
  dueAt: Date;
  /** failures in a row before this run, for the retry backoff */
  consecutiveFailures: number;
}

export type JobOutcome = "ok" | "failed";

export interface JobRunRecord {
  id: bigint;
  job: string;
  runner: string;
  dueAt: Date;
  startedAt: Date;
  endedAt: Date | null;
  outcome: "running" | JobOutcome;
  counts: Record<string, number> | null;
  error: string | null;
}

export interface SchedulerJobRecord {
  job: string;
  nextDueAt: Date;
  leaseHolder: string | null;
  leaseUntil: Date | null;
  consecutiveFailures: number;
}

export interface OutboxEvent {
  id: bigint;
  event: string;
  payload: Record<string, unknown>;
  createdAt: Date;
  attempts: number;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  lastError: string | null;
}

const RUN_COLUMNS = `id, job, runner, due_at AS "dueAt", started_at AS "startedAt", ended_at AS "endedAt", outcome, counts, error`;
const EVENT_COLUMNS = `id, event, payload, created_at AS "createdAt", attempts, next_attempt_at AS "nextAttemptAt", delivered_at AS "deliveredAt", last_error AS "lastError"`;

/** Job due times, leases and run records. */
export class SchedulerStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Creates the rows of jobs seen for the first time, due at `firstDueAt`; existing rows keep their state. */
  async register(jobs: string[], firstDueAt: Date): Promise<void> {
    for (const job of jobs) {
      await execute(this.pool, `INSERT INTO scheduler_jobs (job, next_due_at) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING`, [job, firstDueAt]);
    }
  }

  /**
   * Takes the job's lease if the job is due (or `force`) and nobody holds an unexpired lease,
   * and records the run as started, in one transaction. Undefined means another replica
   * holds it or it is not due: the caller does nothing.
   */
  async claim(job: string, runner: string, now: Date, leaseMs: number, force = false): Promise<JobClaim | undefined> {
    return inTransaction(this.pool, async (client) => {
      const taken = await queryOne<{ nextDueAt: Date; consecutiveFailures: number }>(
        client,
        `UPDATE scheduler_jobs SET lease_holder = $2, lease_until = $3, updated_at = $4
          WHERE job = $1 AND ($5 OR next_due_at <= $4) AND (lease_until IS NULL OR lease_until <= $4)
          RETURNING next_due_at AS "nextDueAt", consecutive_failures AS "consecutiveFailures"`,
        [job, runner, new Date(now.getTime() + leaseMs), now, force],
      );
      if (!taken) return undefined;
      const dueAt = force ? now : taken.nextDueAt;
      const run = await queryOne<{ id: bigint }>(client, `INSERT INTO job_runs (job, runner, due_at, started_at) VALUES ($1, $2, $3, $4) RETURNING id`, [job, runner, dueAt, now]);
      return { runId: run!.id, dueAt, consecutiveFailures: taken.consecutiveFailures };
    });
  }

  /** Keeps the lease while a long run goes on; false if it was lost (expired and taken). */
  async extendLease(job: string, runner: string, until: Date): Promise<boolean> {
    return (await execute(this.pool, `UPDATE scheduler_jobs SET lease_until = $3 WHERE job = $1 AND lease_holder = $2`, [job, runner, until])) === 1;
  }

  /**
   * Ends a run: records outcome and counts, sets the next due time (the next schedule slot
   * after success, a retry time after failure) and frees the lease.
   */
  async finish(job: string, runner: string, runId: bigint, outcome: JobOutcome, now: Date, nextDueAt: Date, counts: Record<string, number>, error?: string): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await execute(client, `UPDATE job_runs SET ended_at = $2, outcome = $3, counts = $4, error = $5 WHERE id = $1`, [runId.toString(), now, outcome, JSON.stringify(counts), error ?? null]);
      await execute(
        client,
        `UPDATE scheduler_jobs SET next_due_at = $3, lease_holder = NULL, lease_until = NULL, updated_at = $4,
                consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures + 1 END
          WHERE job = $1 AND lease_holder = $2`,
        [job, runner, nextDueAt, now, outcome === "ok"],
      );
    });
  }

  async jobs(): Promise<SchedulerJobRecord[]> {
    return query<SchedulerJobRecord>(
      this.pool,
      `SELECT job, next_due_at AS "nextDueAt", lease_holder AS "leaseHolder", lease_until AS "leaseUntil", consecutive_failures AS "consecutiveFailures" FROM scheduler_jobs ORDER BY job`,
    );
  }

  async runs(job?: string, limit = 100): Promise<JobRunRecord[]> {
    return query<JobRunRecord>(this.pool, `SELECT ${RUN_COLUMNS} FROM job_runs WHERE ($1::text IS NULL OR job = $1) ORDER BY id DESC LIMIT $2`, [job ?? null, limit]);
  }
}

export interface AlertToSend {
  subjectKind: "certificate" | "issuer";
  subjectId: string;
  alert: string;
  details: Record<string, unknown>;
}

/** Alerts sent once, and the webhook events that carry them. */
export class AlertStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Records the alert if it was never sent, and in the same transaction queues `event` on
   * the outbox (when given). True if this call is the one that sent it.
   */
  async sendOnce(alert: AlertToSend, now: Date, event?: { event: string; payload: Record<string, unknown> }, alsoMark: string[] = []): Promise<boolean> {
    return inTransaction(this.pool, async (client) => {
      const inserted = await execute(client, `INSERT INTO alerts_sent (subject_kind, subject_id, alert, sent_at, details) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, [
        alert.subjectKind,
        alert.subjectId,
        alert.alert,
        now,
        JSON.stringify(alert.details),
      ]);
      if (inserted !== 1) return false;
      // Thresholds passed over (e.g. the scheduler was down through the 7-day mark) are
      // marked as sent so they do not follow the more urgent alert out of order.
      for (const other of alsoMark) {
        await execute(client, `INSERT INTO alerts_sent (subject_kind, subject_id, alert, sent_at, details) VALUES ($1, $2, $3, $4, '{"superseded":true}') ON CONFLICT DO NOTHING`, [
          alert.subjectKind,
          alert.subjectId,
          other,
          now,
        ]);
      }
      if (event) await execute(client, `INSERT INTO webhook_outbox (event, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $3)`, [event.event, JSON.stringify(event.payload), now]);
      return true;
    });
  }

  async sent(subjectKind?: string, subjectId?: string): Promise<{ subjectKind: string; subjectId: string; alert: string; sentAt: Date; details: unknown }[]> {
    return query<{ subjectKind: string; subjectId: string; alert: string; sentAt: Date; details: unknown }>(
      this.pool,
      `SELECT subject_kind AS "subjectKind", subject_id AS "subjectId", alert, sent_at AS "sentAt", details FROM alerts_sent
        WHERE ($1::text IS NULL OR subject_kind = $1) AND ($2::text IS NULL OR subject_id = $2) ORDER BY sent_at, alert`,
      [subjectKind ?? null, subjectId ?? null],
    );
  }
}

/** Webhook events waiting for (or past) delivery. */
export class WebhookOutboxStore {
  constructor(private readonly pool: pg.Pool) {}

  async enqueue(event: string, payload: Record<string, unknown>, now: Date): Promise<void> {
    await execute(this.pool, `INSERT INTO webhook_outbox (event, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $3)`, [event, JSON.stringify(payload), now]);
  }

  /**
   * Locks up to `limit` due, undelivered events for `lockMs`, oldest first. SKIP LOCKED and
   * the per-row lock time mean concurrent senders never take the same event.
   */
  async claimDue(now: Date, lockMs: number, limit = 50): Promise<OutboxEvent[]> {
    const rows = await query<OutboxEvent>(
      this.pool,
      `UPDATE webhook_outbox SET locked_until = $2
        WHERE id IN (SELECT id FROM webhook_outbox
                      WHERE delivered_at IS NULL AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING ${EVENT_COLUMNS}`,
      [now, new Date(now.getTime() + lockMs), limit],
    );
    return rows.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async markDelivered(id: bigint, now: Date): Promise<void> {
    await execute(this.pool, `UPDATE webhook_outbox SET delivered_at = $2, attempts = attempts + 1, locked_until = NULL, last_error = NULL WHERE id = $1`, [id.toString(), now]);
  }

  async markFailed(id: bigint, error: string, nextAttemptAt: Date): Promise<void> {
    await execute(this.pool, `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = $3, locked_until = NULL, last_error = $2 WHERE id = $1`, [
      id.toString(),
      error.slice(0, 500),
      nextAttemptAt,
    ]);
  }

  async pendingCount(): Promise<number> {
    const row = await queryOne<{ n: number }>(this.pool, `SELECT count(*)::int AS n FROM webhook_outbox WHERE delivered_at IS NULL`);
    return row!.n;
  }

  async list(limit = 1000): Promise<OutboxEvent[]> {
    return query<OutboxEvent>(this.pool, `SELECT ${EVENT_COLUMNS} FROM webhook_outbox ORDER BY id LIMIT $1`, [limit]);
  }
}
