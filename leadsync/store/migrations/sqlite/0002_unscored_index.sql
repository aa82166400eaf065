-- Finding the leads still to score was a scan of every lead (each checked against scores):
-- a flag with a partial index makes it one index read, however many leads are stored.
ALTER TABLE leads ADD COLUMN scored INTEGER NOT NULL DEFAULT 0;
UPDATE leads SET scored = 1 WHERE id IN (SELECT lead_id FROM scores);
CREATE INDEX leads_unscored ON leads (seq) WHERE scored = 0;
