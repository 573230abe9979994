// The re-issue that follows an emergency revocation of an intermediate, kept in the
// inventory so every API worker and replica sees the same run, and only one process at a
// time runs an issuer's re-issue. Raw SQL through the pg pool, like the scheduler's leases:
// the claim and the owner's updates are single conditional statements whose row counts
// are the whole point. Every time comes from the caller's clock.
import type pg from "pg";
import { execute, queryOne } from "../sql.ts";
import { boundAuditText } from "./audit.ts";

/** Failures kept with their message; past that only failed_count grows (a re-run lists the rest). */
export const REISSUE_FAILURES_KEPT = 1000;

export interface ReissueFailure {
  serial: string;
  error: string;
}

export interface ReissueRunRecord {
  issuerId: string;
  /** the run (and so the process) that owns the row */
  runId: string;
  actor: string;
  total: number;
  reissued: number;
  failedCount: number;
  /** the first REISSUE_FAILURES_KEPT failures */
  failed: ReissueFailure[];
  /** why the run stopped short, when it did */
  error: string | null;
  startedAt: Date;
  /** the owner's heartbeat: moved with each progress write */
  updatedAt: Date;
  finishedAt: Date | null;
}

export interface ReissueProgressUpdate {
  total: number;
  reissued: number;
  failedCount: number;
  /** failures not written yet, appended to the stored list up to REISSUE_FAILURES_KEPT */
  newFailures: ReissueFailure[];
}

const COLUMNS = `issuer_id AS "issuerId", run_id AS "runId", actor, total, reissued, failed_count AS "failedCount", failed, error,
                 started_at AS "startedAt", updated_at AS "updatedAt", finished_at AS "finishedAt"`;

/** Serial and message each cut to a few hundred bytes, so a row stays bounded whatever the errors say. */
const boundFailures = (failures: ReissueFailure[]): string =>
  JSON.stringify(failures.slice(0, REISSUE_FAILURES_KEPT).map((f) => ({ serial: boundAuditText(f.serial), error: boundAuditText(f.error) })));

// Appends $n to failed, keeping the first REISSUE_FAILURES_KEPT entries in order.
const appendFailures = (param: string) =>
  `(SELECT COALESCE(jsonb_agg(e ORDER BY i), '[]'::jsonb) FROM jsonb_array_elements(failed || ${param}::jsonb) WITH ORDINALITY AS t(e, i) WHERE i <= ${REISSUE_FAILURES_KEPT})`;

/** A run not finished whose owner has not written for `staleMs` belongs to a process that is gone. */
export function isAbandonedReissue(run: ReissueRunRecord, now: Date, staleMs: number): boolean {
  return run.finishedAt === null && now.getTime() - run.updatedAt.getTime() >= staleMs;
}

/** One re-issue run per issuer: claimed, moved along by its owner, read by anyone. */
export class ReissueRunStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Starts `runId` as the issuer's run, replacing a finished or abandoned one (no write for
   * `staleMs`), in one statement: of concurrent claims exactly one wins. Undefined means
   * another run is in progress; the caller does not start.
   */
  async claim(issuerId: string, runId: string, actor: string, now: Date, staleMs: number): Promise<ReissueRunRecord | undefined> {
    return queryOne<ReissueRunRecord>(
      this.pool,
      `INSERT INTO reissue_runs AS r (issuer_id, run_id, actor, started_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (issuer_id) DO UPDATE
         SET run_id = EXCLUDED.run_id, actor = EXCLUDED.actor, total = 0, reissued = 0, failed_count = 0, failed = '[]', error = NULL,
             started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at, finished_at = NULL
         WHERE r.finished_at IS NOT NULL OR r.updated_at <= $4::timestamptz - make_interval(secs => $5)
       RETURNING ${COLUMNS}`,
      [issuerId, runId, boundAuditText(actor), now, staleMs / 1000],
    );
  }

  /**
   * The owner's progress, which also serves as its heartbeat. False when `runId` no longer
   * owns the row (it was taken over as abandoned): the caller stops.
   */
  async progress(issuerId: string, runId: string, update: ReissueProgressUpdate, now: Date): Promise<boolean> {
    const updated = await execute(
      this.pool,
      `UPDATE reissue_runs SET total = $3, reissued = $4, failed_count = $5, updated_at = $6,
              failed = CASE WHEN $7::jsonb = '[]'::jsonb THEN failed ELSE ${appendFailures("$7")} END
        WHERE issuer_id = $1 AND run_id = $2 AND finished_at IS NULL`,
      [issuerId, runId, update.total, update.reissued, update.failedCount, now, boundFailures(update.newFailures)],
    );
    return updated === 1;
  }

  /** The owner's last write: final progress, and why it stopped short if it did. False when it no longer owned the row. */
  async finish(issuerId: string, runId: string, update: ReissueProgressUpdate, now: Date, error?: string): Promise<boolean> {
    const updated = await execute(
      this.pool,
      `UPDATE reissue_runs SET total = $3, reissued = $4, failed_count = $5, updated_at = $6, finished_at = $6, error = $8,
              failed = CASE WHEN $7::jsonb = '[]'::jsonb THEN failed ELSE ${appendFailures("$7")} END
        WHERE issuer_id = $1 AND run_id = $2 AND finished_at IS NULL`,
      [issuerId, runId, update.total, update.reissued, update.failedCount, now, boundFailures(update.newFailures), error === undefined ? null : boundAuditText(error)],
    );
    return updated === 1;
  }

  /** The issuer's latest run, running, abandoned or finished. */
  async get(issuerId: string): Promise<ReissueRunRecord | undefined> {
    return queryOne<ReissueRunRecord>(this.pool, `SELECT ${COLUMNS} FROM reissue_runs WHERE issuer_id = $1`, [issuerId]);
  }
}
