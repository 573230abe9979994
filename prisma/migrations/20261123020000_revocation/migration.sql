-- Revocation status: published CRLs, delegated OCSP responder certificates and
-- pre-signed OCSP responses (issue 4).

-- One row per issuer. A CRL is published by a single-row UPDATE, so readers see the old
-- CRL or the new one, never a mix. last_number is the highest CRL number ever signed for
-- the issuer; full and delta CRLs share that sequence (RFC 5280 §5.2.3), and publishers
-- take the row lock before reading it, so the number never goes backwards.
CREATE TABLE "crl_state" (
    "issuer_id" TEXT NOT NULL,
    "last_number" BIGINT NOT NULL DEFAULT 0,
    "full_number" BIGINT,
    "full_der" BYTEA,
    "full_this_update" TIMESTAMPTZ(3),
    "full_next_update" TIMESTAMPTZ(3),
    "full_entries" INTEGER,
    "full_etag" TEXT,
    "delta_number" BIGINT,
    "delta_base_number" BIGINT,
    "delta_der" BYTEA,
    "delta_this_update" TIMESTAMPTZ(3),
    "delta_next_update" TIMESTAMPTZ(3),
    "delta_entries" INTEGER,
    "delta_etag" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "crl_state_pkey" PRIMARY KEY ("issuer_id")
);

-- Delegated OCSP responder certificates (EKU OCSPSigning, id-pkix-ocsp-nocheck); the key
-- is on the issuing token, named by key_uri.
CREATE TABLE "ocsp_responders" (
    "id" TEXT NOT NULL,
    "issuer_id" TEXT NOT NULL,
    "key_uri" TEXT NOT NULL,
    "certificate_der" BYTEA NOT NULL,
    "not_before" TIMESTAMPTZ(3) NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ocsp_responders_pkey" PRIMARY KEY ("id")
);

-- One pre-signed response per certificate and CertID hash (SHA-1 per RFC 5019, SHA-256).
-- updated_at is set by the database at write time so responders can poll for changes.
CREATE TABLE "ocsp_responses" (
    "serial" TEXT NOT NULL,
    "issuer_id" TEXT NOT NULL,
    "cert_status" TEXT NOT NULL,
    "der_sha1" BYTEA NOT NULL,
    "der_sha256" BYTEA NOT NULL,
    "this_update" TIMESTAMPTZ(3) NOT NULL,
    "next_update" TIMESTAMPTZ(3) NOT NULL,
    "responder_id" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ocsp_responses_pkey" PRIMARY KEY ("serial")
);

CREATE INDEX "ocsp_responders_issuer_id_not_after_idx" ON "ocsp_responders"("issuer_id", "not_after");
CREATE INDEX "ocsp_responses_updated_at_idx" ON "ocsp_responses"("updated_at");
CREATE INDEX "ocsp_responses_next_update_idx" ON "ocsp_responses"("next_update");
-- Change detection for processes that did not see the in-process events.
CREATE INDEX "certificates_issued_at_idx" ON "certificates"("issued_at");
CREATE INDEX "certificates_revoked_at_idx" ON "certificates"("revoked_at");

-- No foreign keys: these rows are derived data, rebuilt from issuers and certificates,
-- and keeping them out of those models' relations keeps the shared models unchanged.
