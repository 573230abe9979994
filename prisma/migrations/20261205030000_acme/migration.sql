-- ACME (RFC 8555): provisioners that speak ACME, their EAB keys, accounts, orders,
-- authorizations, challenges and unused nonces. Nonces live here rather than in a process
-- so that any API replica accepts a nonce another one handed out, and exactly once.
CREATE TABLE "acme_provisioners" (
    "provisioner_id" TEXT NOT NULL,
    "eab_required" BOOLEAN NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "acme_provisioners_pkey" PRIMARY KEY ("provisioner_id")
);

CREATE TABLE "acme_eab_keys" (
    "kid" TEXT NOT NULL,
    "provisioner_id" TEXT NOT NULL,
    "hmac_key" BYTEA NOT NULL,
    "account_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "bound_at" TIMESTAMPTZ(3),

    CONSTRAINT "acme_eab_keys_pkey" PRIMARY KEY ("kid")
);
CREATE UNIQUE INDEX "acme_eab_keys_account_id_key" ON "acme_eab_keys"("account_id");
CREATE INDEX "acme_eab_keys_provisioner_id_idx" ON "acme_eab_keys"("provisioner_id");

CREATE TABLE "acme_accounts" (
    "id" TEXT NOT NULL,
    "provisioner_id" TEXT NOT NULL,
    "key_thumbprint" TEXT NOT NULL,
    "jwk" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "acme_accounts_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "acme_accounts_provisioner_id_key_thumbprint_key" ON "acme_accounts"("provisioner_id", "key_thumbprint");

CREATE TABLE "acme_orders" (
    "id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "provisioner_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "identifiers" JSONB NOT NULL,
    "profile" TEXT NOT NULL,
    "replaces_serial" TEXT,
    "certificate_serial" TEXT,
    "error" JSONB,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "acme_orders_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "acme_orders_certificate_serial_key" ON "acme_orders"("certificate_serial");
CREATE INDEX "acme_orders_account_id_created_at_idx" ON "acme_orders"("account_id", "created_at");
CREATE INDEX "acme_orders_provisioner_id_created_at_idx" ON "acme_orders"("provisioner_id", "created_at");
CREATE INDEX "acme_orders_status_idx" ON "acme_orders"("status");

CREATE TABLE "acme_authorizations" (
    "id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "identifier_type" TEXT NOT NULL,
    "identifier_value" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL,
    "status" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_authorizations_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "acme_authorizations_order_id_idx" ON "acme_authorizations"("order_id");

CREATE TABLE "acme_challenges" (
    "id" TEXT NOT NULL,
    "authorization_id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "provisioner_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "error" JSONB,
    "validated_at" TIMESTAMPTZ(3),

    CONSTRAINT "acme_challenges_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "acme_challenges_authorization_id_idx" ON "acme_challenges"("authorization_id");
CREATE INDEX "acme_challenges_account_id_status_validated_at_idx" ON "acme_challenges"("account_id", "status", "validated_at");
CREATE INDEX "acme_challenges_provisioner_id_status_validated_at_idx" ON "acme_challenges"("provisioner_id", "status", "validated_at");

CREATE TABLE "acme_nonces" (
    "value" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_nonces_pkey" PRIMARY KEY ("value")
);
CREATE INDEX "acme_nonces_expires_at_idx" ON "acme_nonces"("expires_at");
