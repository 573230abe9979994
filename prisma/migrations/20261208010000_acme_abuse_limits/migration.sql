-- ACME under abuse. New accounts are counted per source network and per provisioner, so
-- each account records the network it was created from (an IPv4 address, or the /64 of
-- an IPv6 one). Replay nonces are no longer stored when handed out: each is an expiry and
-- random bytes authenticated with a key shared by every replica (acme_nonce_keys), and
-- only the nonces that signed requests have used up are stored, until they expire.
ALTER TABLE "acme_accounts" ADD COLUMN "created_from" TEXT;
CREATE INDEX "acme_accounts_provisioner_id_created_at_idx" ON "acme_accounts"("provisioner_id", "created_at");
CREATE INDEX "acme_accounts_created_from_created_at_idx" ON "acme_accounts"("created_from", "created_at");

DROP TABLE "acme_nonces";

CREATE TABLE "acme_spent_nonces" (
    "value" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_spent_nonces_pkey" PRIMARY KEY ("value")
);
CREATE INDEX "acme_spent_nonces_expires_at_idx" ON "acme_spent_nonces"("expires_at");

CREATE TABLE "acme_nonce_keys" (
    "id" INTEGER NOT NULL,
    "key" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "acme_nonce_keys_pkey" PRIMARY KEY ("id")
);
