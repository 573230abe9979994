-- A certificate has at most one live (pending or valid) successor. Two successors of one
-- certificate (say, one renewal with the holder's key and one with a thief's new key)
-- would leave the predecessor recording only one of them, and revoking it for
-- keyCompromise could not find the other. The index makes the database refuse the
-- second intent, so two concurrent renewals cannot both win. A failed or revoked
-- successor no longer counts: the certificate may then be renewed again.
-- On a database that already holds two live successors of one certificate this fails
-- naming the predecessor; revoke the extra successor (superseded) and start again.
CREATE UNIQUE INDEX "certificates_one_live_successor_idx" ON "certificates" ("predecessor_serial")
    WHERE "predecessor_serial" IS NOT NULL AND "status" IN ('pending', 'valid');
