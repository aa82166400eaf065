-- Routing (issue 14): who each lead is, and who owns it. Written once for both backends.

-- Each person seen (normalised email, else E.164 phone), their first lead and their owner.
CREATE TABLE persons (
    person_key text PRIMARY KEY,
    first_lead_id {key} NOT NULL,
    owner text NOT NULL DEFAULT '',
    created_at {time} NOT NULL
);

-- A lead's contact as recorded once: the normalised phone, its person, the lead it repeats.
CREATE TABLE lead_contacts (
    lead_id {key} PRIMARY KEY REFERENCES leads (id),
    person_key text NOT NULL DEFAULT '',
    phone_e164 text NOT NULL DEFAULT '',
    phone_valid {bool} NOT NULL,
    phone_typed text NOT NULL DEFAULT '',
    repeat_of {key} NOT NULL DEFAULT '',
    recorded_at {time} NOT NULL
);

-- A lead's owner, assigned once; the owner's details as configured when assigned.
CREATE TABLE assignments (
    lead_id {key} PRIMARY KEY REFERENCES leads (id),
    name text NOT NULL,
    email text NOT NULL DEFAULT '',
    slack_id text NOT NULL DEFAULT '',
    hubspot_owner_id text NOT NULL DEFAULT '',
    hours text NOT NULL DEFAULT '',
    pool text NOT NULL DEFAULT '',
    rule text NOT NULL DEFAULT '',
    assigned_at {time} NOT NULL
);

-- How many leads each owner of a pool took from it: weighted round-robin's turns.
CREATE TABLE routing_turns (
    pool text NOT NULL,
    owner text NOT NULL,
    assigned integer NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, owner)
);

-- Leads stored before this version: each email's earliest lead is that person's first, so
-- a later lead of theirs, recorded when it is next scored, is marked as a repeat of it.
INSERT INTO persons (person_key, first_lead_id, owner, created_at)
SELECT 'email:' || l.email, l.id, '', l.stored_at FROM leads l
WHERE l.email <> '' AND NOT EXISTS (
    SELECT 1 FROM leads o WHERE o.email = l.email
    AND (o.created_time < l.created_time OR (o.created_time = l.created_time AND o.seq < l.seq))
);
