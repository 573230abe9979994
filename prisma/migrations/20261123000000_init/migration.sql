-- CreateEnum
CREATE TYPE "IssuerRole" AS ENUM ('root', 'intermediate');

-- CreateEnum
CREATE TYPE "IssuerStatus" AS ENUM ('staged', 'active', 'retired', 'expired');

-- CreateEnum
CREATE TYPE "CertificateStatus" AS ENUM ('pending', 'valid', 'revoked', 'failed');

-- CreateTable
CREATE TABLE "issuers" (
    "id" TEXT NOT NULL,
    "hierarchy" TEXT NOT NULL DEFAULT 'default',
    "role" "IssuerRole" NOT NULL,
    "status" "IssuerStatus" NOT NULL,
    "parent_id" TEXT,
    "subject" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "key_uri" TEXT NOT NULL,
    "key_algorithm" TEXT NOT NULL,
    "not_before" TIMESTAMPTZ(3) NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "certificate_der" BYTEA NOT NULL,
    "activated_at" TIMESTAMPTZ(3),
    "retired_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "revocation_reason" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "issuers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "certificates" (
    "serial" TEXT NOT NULL,
    "issuer_id" TEXT NOT NULL,
    "status" "CertificateStatus" NOT NULL,
    "profile" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "sans" TEXT[],
    "search_text" TEXT NOT NULL,
    "key_algorithm" TEXT NOT NULL,
    "public_key_spki" BYTEA NOT NULL,
    "not_before" TIMESTAMPTZ(3) NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "tbs_der" BYTEA NOT NULL,
    "der" BYTEA,
    "requester" TEXT NOT NULL,
    "provisioner_id" TEXT,
    "auto_renew" BOOLEAN NOT NULL DEFAULT false,
    "predecessor_serial" TEXT,
    "successor_serial" TEXT,
    "revoked_at" TIMESTAMPTZ(3),
    "revocation_reason" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "issued_at" TIMESTAMPTZ(3),

    CONSTRAINT "certificates_pkey" PRIMARY KEY ("serial")
);

-- CreateTable
CREATE TABLE "provisioners" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "profiles" TEXT[],
    "names" TEXT[],
    "max_ttl_seconds" INTEGER NOT NULL,
    "hierarchy" TEXT NOT NULL DEFAULT 'default',
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "provisioners_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "admin_tokens" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "admin_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT,
    "source_ip" TEXT,
    "outcome" TEXT NOT NULL DEFAULT 'ok',
    "details" JSONB,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "issuers_hierarchy_role_status_idx" ON "issuers"("hierarchy", "role", "status");

-- CreateIndex
CREATE INDEX "certificates_issuer_id_status_idx" ON "certificates"("issuer_id", "status");

-- CreateIndex
CREATE INDEX "certificates_not_after_serial_idx" ON "certificates"("not_after", "serial");

-- CreateIndex
CREATE INDEX "certificates_status_not_after_idx" ON "certificates"("status", "not_after");

-- CreateIndex
CREATE UNIQUE INDEX "provisioners_name_key" ON "provisioners"("name");

-- CreateIndex
CREATE UNIQUE INDEX "provisioners_token_hash_key" ON "provisioners"("token_hash");

-- CreateIndex
CREATE UNIQUE INDEX "admin_tokens_token_hash_key" ON "admin_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "audit_events_at_idx" ON "audit_events"("at");

-- CreateIndex
CREATE INDEX "audit_events_target_idx" ON "audit_events"("target");

-- AddForeignKey
ALTER TABLE "issuers" ADD CONSTRAINT "issuers_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "issuers"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "certificates" ADD CONSTRAINT "certificates_issuer_id_fkey" FOREIGN KEY ("issuer_id") REFERENCES "issuers"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
