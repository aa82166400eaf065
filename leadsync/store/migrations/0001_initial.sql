-- leadsync schema, version 1, for both backends: the words in braces are the dialect's.
-- {serial}: an auto-numbered primary key. {key}: an id, in the "C" collation on PostgreSQL
-- so ids sort the same there as on SQLite and in Python. {time}: timestamptz on PostgreSQL;
-- on SQLite ISO-8601 text in UTC with microseconds, which compares correctly as text.
-- {bool}: boolean on PostgreSQL, 0/1 on SQLite.

-- Lead ids we know exist, before their answers are fetched.
CREATE TABLE notifications (
    seq {serial},
    lead_id {key} NOT NULL UNIQUE,
    page_id text NOT NULL,
    form_id text NOT NULL DEFAULT '',
    ad_id text NOT NULL DEFAULT '',
    created_time {time},
    source text NOT NULL,
    received_at {time} NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'dropped')),
    attempts integer NOT NULL DEFAULT 0,
    retry_at {time},
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX notifications_pending ON notifications (seq) WHERE state = 'pending';

-- Fetched leads: the whole Lead as JSON text (kept byte for byte, so answers keep
-- their form order), plus the columns we search by.
CREATE TABLE leads (
    seq {serial},
    id {key} NOT NULL UNIQUE,
    page_id text NOT NULL,
    form_id text NOT NULL,
    created_time {time} NOT NULL,
    email text NOT NULL DEFAULT '',
    payload text NOT NULL,
    stored_at {time} NOT NULL
);
CREATE INDEX leads_email ON leads (email) WHERE email <> '';
CREATE INDEX leads_form ON leads (form_id, created_time);

CREATE TABLE forms (
    id {key} PRIMARY KEY,
    page_id {key} NOT NULL,
    name text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'ACTIVE',
    questions text NOT NULL DEFAULT '[]',
    updated_at {time} NOT NULL
);
CREATE INDEX forms_page ON forms (page_id, id);

CREATE TABLE checkpoints (
    form_id {key} PRIMARY KEY,
    last_created_time {time},
    polled_at {time},
    last_error text NOT NULL DEFAULT ''
);

-- A lead's current score; reasons are a JSON list of [rule, points, group].
CREATE TABLE scores (
    lead_id {key} PRIMARY KEY REFERENCES leads (id),
    points integer NOT NULL,
    mql {bool} NOT NULL,
    fit integer NOT NULL DEFAULT 0,
    engagement integer NOT NULL DEFAULT 0,
    reasons text NOT NULL DEFAULT '[]',
    rules_version text NOT NULL DEFAULT '',
    revision integer NOT NULL,
    scored_at {time} NOT NULL
);

-- Engagement events, already resolved to a stored lead by the caller.
CREATE TABLE events (
    id {key} PRIMARY KEY,
    lead_id {key} NOT NULL,
    email text NOT NULL DEFAULT '',
    type text NOT NULL,
    at {time} NOT NULL,
    received_at {time} NOT NULL
);
CREATE INDEX events_lead ON events (lead_id, at);

-- One row per (lead, destination, revision) that must reach the destination.
CREATE TABLE outbox (
    id {serial},
    lead_id {key} NOT NULL REFERENCES leads (id),
    destination {key} NOT NULL,
    revision integer NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    created_at {time} NOT NULL,
    next_attempt_at {time} NOT NULL,
    claimed_by text,
    claimed_until {time},
    last_error text NOT NULL DEFAULT '',
    external_id text NOT NULL DEFAULT '',
    delivered_at {time},
    dead_at {time},
    UNIQUE (lead_id, destination, revision)
);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (destination, state);

-- Named leases with an expiry (one poller among replicas, ...).
CREATE TABLE leases (
    name text PRIMARY KEY,
    owner text NOT NULL,
    expires_at {time} NOT NULL
);

CREATE TABLE service_status (
    service {key} PRIMARY KEY,
    ok {bool} NOT NULL,
    message text NOT NULL DEFAULT '',
    at {time} NOT NULL
);

CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
