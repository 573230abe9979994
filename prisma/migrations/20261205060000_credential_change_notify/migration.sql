-- API processes keep the bearer tokens they verified in memory, and drop them all when a
-- credential changes. The notification comes from the tables themselves, so every writer
-- (the API, the CLI, a console action, a hand-written UPDATE) invalidates those caches, in
-- the transaction that writes (delivered on commit, never for a rollback).
CREATE FUNCTION "pki_notify_credentials"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pki_credentials', '');
  RETURN NULL;
END;
$$;

CREATE TRIGGER "admin_tokens_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "admin_tokens"
  FOR EACH STATEMENT EXECUTE FUNCTION "pki_notify_credentials"();
CREATE TRIGGER "provisioners_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "provisioners"
  FOR EACH STATEMENT EXECUTE FUNCTION "pki_notify_credentials"();
