-- One PostgreSQL user per role, each with only the grants its code needs (README:
-- "Database users per role"). Run by the migration user (the owner of the tables) after
-- the migrations: `pki migrate --grant-roles` does both. Idempotent: every run first takes
-- all privileges away from the role users and grants exactly what is listed here, so a
-- new release narrowing a role narrows it on the next migrate.
--
-- Users that do not exist yet are created NOLOGIN (creating needs CREATEROLE); give each a
-- password and LOGIN yourself (ALTER ROLE pki_api LOGIN PASSWORD '...'), or create them
-- beforehand with passwords (deploy/postgres/create-role-users.sh does it in compose).
-- pki_migrate is the owner: it runs migrations (DDL), `pki init`, and this script.
BEGIN;

DO $roles$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['pki_migrate', 'pki_api', 'pki_ocsp', 'pki_crl', 'pki_scheduler', 'pki_validator'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created meanwhile by another migrate step (roles are per cluster)
      END;
    END IF;
  END LOOP;
END
$roles$;

-- CONNECT and TEMPORARY (the CRL publisher streams a CRL through a temporary table) come
-- from PostgreSQL's default grant to PUBLIC on a database.

-- Start from nothing on every table and sequence of this schema, then grant.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pki_api, pki_ocsp, pki_crl, pki_scheduler, pki_validator;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM pki_api, pki_ocsp, pki_crl, pki_scheduler, pki_validator;
-- No role user creates objects (PostgreSQL 15 no longer lets PUBLIC create in public).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO pki_api, pki_ocsp, pki_crl, pki_scheduler, pki_validator;
-- Each role checks at start that the schema is current (it never migrates).
GRANT SELECT ON "_prisma_migrations" TO pki_api, pki_ocsp, pki_crl, pki_scheduler, pki_validator;

-- pki_validator: the keyless ACME validator. It claims the challenges the API started,
-- reads what validating them takes (identifier, account key thumbprint, the provisioner's
-- name patterns) and records outcomes on the challenge, its authorization and its order;
-- nothing else, and no certificate, token or credential.
GRANT SELECT, UPDATE ON acme_challenges, acme_authorizations, acme_orders TO pki_validator;
GRANT SELECT (id, key_thumbprint) ON acme_accounts TO pki_validator;
GRANT SELECT (id, names) ON provisioners TO pki_validator;

-- pki_ocsp: the public, keyless responder. Read-only: the issuers (to map CertIDs), the
-- pre-signed responses, and of the certificates only what "not signed yet or not ours"
-- needs (no DER, no subject, no names).
GRANT SELECT ON issuers, ocsp_responses TO pki_ocsp;
GRANT SELECT (serial, issuer_id, status, revoked_at, revocation_reason, not_after) ON certificates TO pki_ocsp;

-- pki_crl: the CRL publisher and OCSP pre-signer. Reads the inventory; writes CRLs,
-- pre-signed responses, and its own delegated OCSP responder certificates (an intent,
-- then the signed certificate with its audit event).
GRANT SELECT ON issuers, certificates, crl_state, ocsp_responders, ocsp_responses TO pki_crl;
GRANT INSERT, UPDATE ON crl_state, ocsp_responses, certificates TO pki_crl;
GRANT INSERT ON ocsp_responders, audit_events TO pki_crl;
GRANT USAGE ON SEQUENCE audit_events_id_seq TO pki_crl;

-- pki_scheduler: renewal (issuance), alerts and webhooks, issuer lifecycle (activation,
-- expiry), reconciliation of interrupted issuances, responder key clean-up, its leases.
GRANT SELECT ON issuers, issuer_intents, certificates, provisioners, ocsp_responders, crl_state, scheduler_jobs, job_runs, alerts_sent, webhook_outbox TO pki_scheduler;
GRANT INSERT, UPDATE ON certificates, scheduler_jobs, job_runs, webhook_outbox TO pki_scheduler;
-- (issuer_intents: reconcile-intents closes a CA certificate's intent a crash left pending)
GRANT UPDATE ON issuers, issuer_intents, ocsp_responders TO pki_scheduler;
GRANT INSERT ON alerts_sent, audit_events TO pki_scheduler;
GRANT USAGE ON SEQUENCE audit_events_id_seq, job_runs_id_seq, webhook_outbox_id_seq TO pki_scheduler;

-- pki_api: issuance and revocation (REST, mTLS renewal, ACME), provisioners, operators and
-- console sessions, audit reads, and the emergency issuer ceremonies (rotate, activate,
-- revoke an intermediate, which re-sign the root CRL and the root's answer about the
-- intermediate). An operator may run a scheduler job now from the console, which runs in
-- the API process under the job's lease: so it may also write the scheduler's job tables.
-- It never deletes certificates, issuers, job runs, re-issue runs or audit events.
GRANT SELECT ON issuers, issuer_intents, certificates, provisioners, admin_tokens, console_sessions, audit_events, crl_state, ocsp_responders, ocsp_responses, scheduler_jobs, job_runs, alerts_sent, webhook_outbox, reissue_runs TO pki_api;
GRANT INSERT, UPDATE ON issuers, issuer_intents, certificates, provisioners, admin_tokens, console_sessions, crl_state, ocsp_responses, scheduler_jobs, job_runs, webhook_outbox, reissue_runs TO pki_api;
GRANT UPDATE ON ocsp_responders TO pki_api;
GRANT INSERT ON audit_events, alerts_sent TO pki_api;
GRANT DELETE ON console_sessions TO pki_api;
GRANT USAGE ON SEQUENCE audit_events_id_seq, job_runs_id_seq, webhook_outbox_id_seq TO pki_api;
-- ACME: accounts, orders, authorizations, challenges, EAB keys; a used nonce is recorded
-- until it expires (each is good once, on any replica) and expired ones are deleted; the
-- nonce key is created by the first process that needs it.
GRANT SELECT, INSERT, UPDATE ON acme_provisioners, acme_eab_keys, acme_accounts, acme_orders, acme_authorizations, acme_challenges TO pki_api;
GRANT SELECT, INSERT, DELETE ON acme_spent_nonces TO pki_api;
GRANT SELECT, INSERT ON acme_nonce_keys TO pki_api;

COMMIT;
