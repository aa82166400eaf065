-- Finding the leads still to score was a scan of every lead (each checked against scores):
-- a flag with a partial index makes it one index read, however many leads are stored.
ALTER TABLE leads ADD COLUMN scored boolean NOT NULL DEFAULT false;
UPDATE leads SET scored = true WHERE id IN (SELECT lead_id FROM scores);
CREATE INDEX leads_unscored ON leads (seq) WHERE NOT scored;
