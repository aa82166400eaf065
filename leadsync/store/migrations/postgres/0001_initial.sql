-- leadsync schema, version 1 (PostgreSQL).
-- Ids are text in the "C" collation, so they sort the same as on SQLite and in Python.

-- Lead ids we know exist, before their answers are fetched.
CREATE TABLE notifications (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id text COLLATE "C" NOT NULL UNIQUE,
    page_id text NOT NULL,
    form_id text NOT NULL DEFAULT '',
    ad_id text NOT NULL DEFAULT '',
    created_time timestamptz,
    source text NOT NULL,
    received_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'dropped')),
    attempts integer NOT NULL DEFAULT 0,
    retry_at timestamptz,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX notifications_pending ON notifications (seq) WHERE state = 'pending';

-- Fetched leads: the whole Lead as JSON text (kept byte for byte, so answers keep
-- their form order), plus the columns we search by.
CREATE TABLE leads (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    page_id text NOT NULL,
    form_id text NOT NULL,
    created_time timestamptz NOT NULL,
    email text NOT NULL DEFAULT '',
    payload text NOT NULL,
    stored_at timestamptz NOT NULL
);
CREATE INDEX leads_email ON leads (email) WHERE email <> '';
CREATE INDEX leads_form ON leads (form_id, created_time);

CREATE TABLE forms (
    id text COLLATE "C" PRIMARY KEY,
    page_id text COLLATE "C" NOT NULL,
    name text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'ACTIVE',
    questions text NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL
);
CREATE INDEX forms_page ON forms (page_id, id);

CREATE TABLE checkpoints (
    form_id text COLLATE "C" PRIMARY KEY,
    last_created_time timestamptz,
    polled_at timestamptz,
    last_error text NOT NULL DEFAULT ''
);

-- A lead's current score; reasons are a JSON list of [rule, points, group].
CREATE TABLE scores (
    lead_id text COLLATE "C" PRIMARY KEY REFERENCES leads (id),
    points integer NOT NULL,
    mql boolean NOT NULL,
    fit integer NOT NULL DEFAULT 0,
    engagement integer NOT NULL DEFAULT 0,
    reasons text NOT NULL DEFAULT '[]',
    rules_version text NOT NULL DEFAULT '',
    revision integer NOT NULL,
    scored_at timestamptz NOT NULL
);

-- Engagement events, already resolved to a stored lead by the caller.
CREATE TABLE events (
    id text COLLATE "C" PRIMARY KEY,
    lead_id text COLLATE "C" NOT NULL,
    email text NOT NULL DEFAULT '',
    type text NOT NULL,
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX events_lead ON events (lead_id, at);

-- One row per (lead, destination, revision) that must reach the destination.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id text COLLATE "C" NOT NULL REFERENCES leads (id),
    destination text COLLATE "C" NOT NULL,
    revision integer NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    claimed_by text,
    claimed_until timestamptz,
    last_error text NOT NULL DEFAULT '',
    external_id text NOT NULL DEFAULT '',
    delivered_at timestamptz,
    dead_at timestamptz,
    UNIQUE (lead_id, destination, revision)
);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (destination, state);

-- Named leases with an expiry (one poller among replicas, ...).
CREATE TABLE leases (
    name text PRIMARY KEY,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE service_status (
    service text COLLATE "C" PRIMARY KEY,
    ok boolean NOT NULL,
    message text NOT NULL DEFAULT '',
    at timestamptz NOT NULL
);

CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
