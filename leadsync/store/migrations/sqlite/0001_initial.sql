-- leadsync schema, version 1 (SQLite).
-- Times are ISO-8601 text in UTC with microseconds ("2026-11-20T10:00:00.000000+00:00"),
-- so they compare correctly as text. Booleans are 0/1.

-- Lead ids we know exist, before their answers are fetched.
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY,
    lead_id TEXT NOT NULL UNIQUE,
    page_id TEXT NOT NULL,
    form_id TEXT NOT NULL DEFAULT '',
    ad_id TEXT NOT NULL DEFAULT '',
    created_time TEXT,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at TEXT,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX notifications_pending ON notifications (seq) WHERE state = 'pending';

-- Fetched leads: the whole Lead as JSON, plus the columns we search by.
CREATE TABLE leads (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    page_id TEXT NOT NULL,
    form_id TEXT NOT NULL,
    created_time TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE INDEX leads_email ON leads (email) WHERE email <> '';
CREATE INDEX leads_form ON leads (form_id, created_time);

CREATE TABLE forms (
    id TEXT PRIMARY KEY,
    page_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    questions TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);
CREATE INDEX forms_page ON forms (page_id, id);

CREATE TABLE checkpoints (
    form_id TEXT PRIMARY KEY,
    last_created_time TEXT,
    polled_at TEXT,
    last_error TEXT NOT NULL DEFAULT ''
);

-- A lead's current score; reasons are a JSON list of [rule, points, group].
CREATE TABLE scores (
    lead_id TEXT PRIMARY KEY REFERENCES leads (id),
    points INTEGER NOT NULL,
    mql INTEGER NOT NULL,
    fit INTEGER NOT NULL DEFAULT 0,
    engagement INTEGER NOT NULL DEFAULT 0,
    reasons TEXT NOT NULL DEFAULT '[]',
    rules_version TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL,
    scored_at TEXT NOT NULL
);

-- Engagement events, already resolved to a stored lead by the caller.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX events_lead ON events (lead_id, at);

-- One row per (lead, destination, revision) that must reach the destination.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    lead_id TEXT NOT NULL REFERENCES leads (id),
    destination TEXT NOT NULL,
    revision INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    delivered_at TEXT,
    dead_at TEXT,
    UNIQUE (lead_id, destination, revision)
);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (destination, state);

-- Named leases with an expiry (one poller among replicas, ...).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE service_status (
    service TEXT PRIMARY KEY,
    ok INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
