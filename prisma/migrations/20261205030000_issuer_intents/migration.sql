-- A CA certificate's intent, recorded before the parent (or the root's own key) signs it,
-- like every leaf's pending row: the exact to-be-signed bytes, the key and the serial. The
-- issuers row is created with the signed certificate in the same transaction that marks
-- the intent issued; a token failure marks it failed, and the reconcile-intents job closes
-- one a crash left pending.
CREATE TYPE "IntentStatus" AS ENUM ('pending', 'issued', 'failed');

CREATE TABLE "issuer_intents" (
    "id" TEXT NOT NULL,
    "hierarchy" TEXT NOT NULL,
    "role" "IssuerRole" NOT NULL,
    "parent_id" TEXT,
    "serial" TEXT NOT NULL,
    "key_uri" TEXT NOT NULL,
    "tbs_der" BYTEA NOT NULL,
    "status" "IntentStatus" NOT NULL DEFAULT 'pending',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "issuer_intents_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "issuer_intents_status_created_at_idx" ON "issuer_intents"("status", "created_at");
