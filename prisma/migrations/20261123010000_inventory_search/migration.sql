-- Inventory search that stays fast at a million rows.
-- Text search (`q`) is a substring match on the lower-cased subject and SANs: a trigram
-- GIN index serves `LIKE '%term%'` for terms of three or more characters.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- CreateIndex
CREATE INDEX "certificates_search_text_trgm_idx" ON "certificates" USING GIN ("search_text" gin_trgm_ops);

-- Each equality filter followed by the list's sort key (not_after, serial), so a filtered
-- page is an index range scan that stops after `limit` rows instead of a sort.
-- CreateIndex
CREATE INDEX "certificates_status_not_after_serial_idx" ON "certificates"("status", "not_after", "serial");

-- CreateIndex
CREATE INDEX "certificates_issuer_id_not_after_serial_idx" ON "certificates"("issuer_id", "not_after", "serial");

-- CreateIndex
CREATE INDEX "certificates_profile_not_after_serial_idx" ON "certificates"("profile", "not_after", "serial");
