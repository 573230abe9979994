-- Delegated OCSP responder keys are destroyed on the token once their certificate has
-- expired (the scheduler's responder-key-cleanup job); this records when, so each key is
-- destroyed and audited once and the job only looks at responders whose key is still there.
ALTER TABLE "ocsp_responders" ADD COLUMN "key_destroyed_at" TIMESTAMPTZ(3);
