-- Challenge validation runs in a process that holds no key (the ACME validator): the API
-- marks a challenge processing, and a validator claims it until claimed_until. A claim
-- that lapsed (its validator died) may be taken by another validator.
ALTER TABLE "acme_challenges" ADD COLUMN "claimed_until" TIMESTAMPTZ(3);
CREATE INDEX "acme_challenges_status_claimed_until_idx" ON "acme_challenges"("status", "claimed_until");
