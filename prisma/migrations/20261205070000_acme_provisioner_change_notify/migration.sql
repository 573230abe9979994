-- API processes keep each ACME provisioner with its ACME settings in memory (every ACME
-- request starts by looking it up), and drop them all when a credential changes. The
-- provisioners table already notifies; its ACME settings (eab_required) notify the same
-- channel, so a setting changed by any writer reaches every worker and replica on commit.
CREATE TRIGGER "acme_provisioners_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "acme_provisioners"
  FOR EACH STATEMENT EXECUTE FUNCTION "pki_notify_credentials"();
