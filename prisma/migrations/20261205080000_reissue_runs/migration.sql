-- Progress of the re-issue that follows an emergency revocation of an intermediate, one
-- row per issuer (its latest run), so any API worker or replica answers for it and only
-- one process at a time re-issues an issuer's certificates. The process running it owns
-- the row through run_id and moves updated_at at least every few seconds; a row not
-- finished whose updated_at stopped moving belongs to a process that died, and a new run
-- may take it over. failed holds the first failures only (the count is failed_count).
CREATE TABLE "reissue_runs" (
    "issuer_id" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "total" INTEGER NOT NULL DEFAULT 0,
    "reissued" INTEGER NOT NULL DEFAULT 0,
    "failed_count" INTEGER NOT NULL DEFAULT 0,
    "failed" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "reissue_runs_pkey" PRIMARY KEY ("issuer_id")
);

ALTER TABLE "reissue_runs" ADD CONSTRAINT "reissue_runs_issuer_id_fkey" FOREIGN KEY ("issuer_id") REFERENCES "issuers"("id") ON DELETE CASCADE ON UPDATE CASCADE;
