-- A lead's stages after it arrived (mql from its score; contacted, sql, won, lost from sales),
-- once per lead and stage: the first time it was reached. {decimal}: numeric on PostgreSQL,
-- the number's text on SQLite (exact, as a Decimal reads it back).
CREATE TABLE lead_stages (
    lead_id {key} NOT NULL REFERENCES leads (id),
    stage text NOT NULL CHECK (stage IN ('lead', 'mql', 'contacted', 'sql', 'won', 'lost')),
    reached_at {time} NOT NULL,
    value {decimal},
    source text NOT NULL DEFAULT '',
    recorded_at {time} NOT NULL,
    PRIMARY KEY (lead_id, stage)
);
CREATE INDEX lead_stages_reached ON lead_stages (reached_at);

-- Leads that were MQLs before this table: the time of their current score is the best we know.
INSERT INTO lead_stages (lead_id, stage, reached_at, source, recorded_at)
SELECT lead_id, 'mql', scored_at, 'scoring', scored_at FROM scores WHERE mql;

-- Outcome readers find leads by what a destination called them (a HubSpot contact id).
CREATE INDEX outbox_external ON outbox (destination, external_id) WHERE external_id <> '';
