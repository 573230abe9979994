-- Scheduler, expiry alerts, webhook outbox and scheduled intermediate activation (issue 5).

-- A staged intermediate may be given a time at which it becomes active; the scheduler's
-- issuer-lifecycle job (and `pki issuers activate`) performs the switch.
ALTER TABLE "issuers" ADD COLUMN "activate_at" TIMESTAMPTZ(3);

-- One row per job. next_due_at is when the job must run next, whoever runs it: a replica
-- runs the job only by moving the lease from free (or expired) to itself in one UPDATE,
-- so each due run happens on exactly one scheduler, and a run missed while every
-- scheduler was down is simply overdue at the next start-up.
CREATE TABLE "scheduler_jobs" (
    "job" TEXT NOT NULL,
    "next_due_at" TIMESTAMPTZ(3) NOT NULL,
    "lease_holder" TEXT,
    "lease_until" TIMESTAMPTZ(3),
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "scheduler_jobs_pkey" PRIMARY KEY ("job")
);

-- Every run of every job: who ran it, for which due time, how it ended and what it did.
CREATE TABLE "job_runs" (
    "id" BIGSERIAL NOT NULL,
    "job" TEXT NOT NULL,
    "runner" TEXT NOT NULL,
    "due_at" TIMESTAMPTZ(3) NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),
    "outcome" TEXT NOT NULL DEFAULT 'running',
    "counts" JSONB,
    "error" TEXT,

    CONSTRAINT "job_runs_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "job_runs_job_started_at_idx" ON "job_runs"("job", "started_at");

-- An alert is sent once per subject and kind (e.g. certificate 01ab…, "expiry-7d"): the
-- primary key is the "once", and the insert commits together with its outbox row.
CREATE TABLE "alerts_sent" (
    "subject_kind" TEXT NOT NULL,
    "subject_id" TEXT NOT NULL,
    "alert" TEXT NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL,
    "details" JSONB,

    CONSTRAINT "alerts_sent_pkey" PRIMARY KEY ("subject_kind", "subject_id", "alert")
);

-- Webhook events wait here until the receiver answers 2xx; nothing is lost while it is down.
-- locked_until is a short per-row lease so two schedulers never post the same event at once.
CREATE TABLE "webhook_outbox" (
    "id" BIGSERIAL NOT NULL,
    "event" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL,
    "locked_until" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "last_error" TEXT,

    CONSTRAINT "webhook_outbox_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "webhook_outbox_delivered_at_next_attempt_at_idx" ON "webhook_outbox"("delivered_at", "next_attempt_at");
