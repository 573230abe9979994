-- Operator console sessions. The cookie value is never stored, only its SHA-256, so a
-- database dump reveals no live session. A row lives until its idle or absolute expiry
-- (removed on use and by the periodic sweep), its logout, or its operator's removal.
CREATE TABLE "console_sessions" (
    "id_hash" TEXT NOT NULL,
    "operator" TEXT NOT NULL,
    "csrf_token" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "console_sessions_pkey" PRIMARY KEY ("id_hash")
);

CREATE INDEX "console_sessions_operator_created_at_idx" ON "console_sessions"("operator", "created_at");
CREATE INDEX "console_sessions_expires_at_idx" ON "console_sessions"("expires_at");

-- The audit view filters by actor and action (prefix matches) and pages by id.
CREATE INDEX "audit_events_actor_id_idx" ON "audit_events"("actor" text_pattern_ops, "id");
CREATE INDEX "audit_events_action_id_idx" ON "audit_events"("action" text_pattern_ops, "id");
