-- Speed to lead (issue 14): the reminder and escalation of each MQL, once per lead and kind.
-- A row is inserted when a replica claims the alert (claimed_by, claimed_until) and marked
-- sent after the message went out; a claim that expired unsent is taken again. Written once.
CREATE TABLE sla_alerts (
    lead_id {key} NOT NULL REFERENCES leads (id),
    kind text NOT NULL CHECK (kind IN ('reminder', 'escalation')),
    due_at {time} NOT NULL,
    target text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'claimed' CHECK (state IN ('claimed', 'sent', 'failed')),
    claimed_by text,
    claimed_until {time},
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    sent_at {time},
    PRIMARY KEY (lead_id, kind)
);

-- The SLA job reads recent MQL stages; lead_stages_reached (0003) serves it.
