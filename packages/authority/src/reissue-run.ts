// The re-issue after an emergency revocation of an intermediate, recorded in the inventory
// (reissue_runs) while it runs: any API worker or replica reports its progress, and no two
// processes re-issue the same issuer's certificates at once. The process that claims the
// run owns it; it writes progress at a bounded rate (not per certificate: a fleet of
// thousands would be thousands of writes) and keeps writing while nothing moves, so a run
// whose writes stop belongs to a process that died and may be taken over.
import { randomUUID } from "node:crypto";
import { type CertificateRecord, type Inventory, type ReissueFailure, type ReissueProgressUpdate, type ReissueRunRecord, isAbandonedReissue } from "@pki/db";
import type { Config } from "@pki/config";
import type { Authority } from "./authority.ts";
import type { Clock } from "./clock.ts";
import { type ReissueResult, reissueCertificates } from "./rotation.ts";

/** A run not finished whose owner has not written for this long is abandoned (its process is gone). */
export const REISSUE_STALE_MS = 60_000;
/** Progress reaches the inventory at most this often while certificates are being re-issued. */
export const REISSUE_PROGRESS_WRITE_MS = 500;
/** The owner writes at least this often even when nothing moved (one slow certificate, the revocation before the run). */
const REISSUE_HEARTBEAT_MS = 10_000;
/** The final write is tried this many times, a second apart: a database blip should not leave the run looking abandoned. */
const FINISH_ATTEMPTS = 3;

/** A run as an operator sees it. */
export interface ReissueStatus {
  total: number;
  reissued: number;
  failedCount: number;
  /** the first REISSUE_FAILURES_KEPT failures */
  failed: ReissueFailure[];
  /** the run finished (every certificate tried, or it stopped on `error`) */
  done: boolean;
  /** not finished, and its process stopped writing REISSUE_STALE_MS ago: it died; revoking again with reissue resumes */
  stalled: boolean;
  error: string | null;
  actor: string;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export function reissueStatus(run: ReissueRunRecord, now: Date): ReissueStatus {
  return {
    total: run.total,
    reissued: run.reissued,
    failedCount: run.failedCount,
    failed: run.failed,
    done: run.finishedAt !== null,
    stalled: isAbandonedReissue(run, now, REISSUE_STALE_MS),
    error: run.error,
    actor: run.actor,
    startedAt: run.startedAt,
    updatedAt: run.updatedAt,
    finishedAt: run.finishedAt,
  };
}

type ReissueDeps = { authority: Authority; inventory: Inventory; config: Config };

/** An issuer's re-issue run claimed by this process; it writes the run's row until it finishes. */
export class RecordedReissue {
  private total = 0;
  private latest: Readonly<ReissueResult> = { reissued: [], failed: [], failedCount: 0 };
  /** failures of `latest.failed` already in the row */
  private failuresWritten = 0;
  private dirty = false;
  private lastWriteAt = Date.now();
  private writing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly lost = new AbortController();

  private constructor(
    private readonly inventory: Inventory,
    private readonly clock: Clock,
    readonly issuerId: string,
    readonly runId: string,
    private readonly actor: string,
    private readonly onError: (error: unknown) => void,
  ) {
    // Started at the claim: the revocation that comes before the re-issue may take a while
    // (a new intermediate's key on the token, the root CRL), and the run must look alive.
    this.timer = setInterval(() => this.tick(), REISSUE_PROGRESS_WRITE_MS);
    this.timer.unref();
  }

  /**
   * Claims the issuer's run for this process: undefined when another process runs it now.
   * A finished run, or one abandoned by a dead process, is replaced. `onError` hears of
   * writes that failed (they are retried) and of losing the run to another process.
   */
  static async claim(inventory: Inventory, clock: Clock, issuerId: string, actor: string, onError: (error: unknown) => void): Promise<RecordedReissue | undefined> {
    const runId = randomUUID();
    const claimed = await inventory.reissueRuns.claim(issuerId, runId, actor, clock.now(), REISSUE_STALE_MS);
    return claimed ? new RecordedReissue(inventory, clock, issuerId, runId, actor, onError) : undefined;
  }

  /**
   * Re-issues `records` (several at a time, see reissueCertificates) and records the
   * outcome; resolves when the run is over, with its result. Stops starting certificates
   * if another process took the run over.
   */
  async run(deps: ReissueDeps, records: CertificateRecord[], onProgress?: (result: Readonly<ReissueResult>) => void): Promise<ReissueResult> {
    this.total = records.length;
    this.dirty = true;
    let stoppedBy: string | undefined;
    try {
      this.latest = await reissueCertificates(deps, records, this.actor, {
        signal: this.lost.signal,
        onProgress: (result) => {
          this.latest = result;
          this.dirty = true;
          onProgress?.(result);
        },
      });
    } catch (error) {
      stoppedBy = (error as Error).message;
      this.onError(error);
    }
    await this.end(stoppedBy);
    return { reissued: [...this.latest.reissued], failed: [...this.latest.failed], failedCount: this.latest.failedCount };
  }

  /** Ends the run without re-issuing anything: nothing to re-issue, or (with `reason`) what it waited for failed. */
  async finishEarly(reason?: string): Promise<void> {
    await this.end(reason);
  }

  private update(): ReissueProgressUpdate {
    return { total: this.total, reissued: this.latest.reissued.length, failedCount: this.latest.failedCount, newFailures: this.latest.failed.slice(this.failuresWritten) };
  }

  private tick(): void {
    if (this.writing) return;
    if (!this.dirty && Date.now() - this.lastWriteAt < REISSUE_HEARTBEAT_MS) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
    });
  }

  private async write(): Promise<void> {
    const update = this.update();
    this.dirty = false;
    try {
      const owned = await this.inventory.reissueRuns.progress(this.issuerId, this.runId, update, this.clock.now());
      this.lastWriteAt = Date.now();
      this.failuresWritten += update.newFailures.length;
      if (!owned) this.loseRun();
    } catch (error) {
      this.dirty = true; // the next tick tries again, with everything since
      this.onError(new Error(`could not record the progress of the re-issue of ${this.issuerId}'s certificates`, { cause: error }));
    }
  }

  private loseRun(): void {
    if (this.lost.signal.aborted) return;
    clearInterval(this.timer);
    this.lost.abort();
    this.onError(new Error(`the re-issue of ${this.issuerId}'s certificates was taken over by another process (this one wrote nothing for ${REISSUE_STALE_MS / 1000} s); stopping here`));
  }

  private async end(stoppedBy: string | undefined): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    if (this.lost.signal.aborted) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const owned = await this.inventory.reissueRuns.finish(this.issuerId, this.runId, this.update(), this.clock.now(), stoppedBy);
        if (!owned) this.loseRun();
        return;
      } catch (error) {
        this.onError(new Error(`could not record the end of the re-issue of ${this.issuerId}'s certificates (attempt ${attempt} of ${FINISH_ATTEMPTS})`, { cause: error }));
        if (attempt === FINISH_ATTEMPTS) return; // the row goes stale and reads as stalled: revoking again resumes
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}
