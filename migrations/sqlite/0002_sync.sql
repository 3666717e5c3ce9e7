-- What the sync keeps of GitHub, Render and the target databases, so that a
-- page view never calls upstream. Each record is kept whole as JSON (`data`)
-- beside the columns that are searched or sorted on. Times are RFC 3339 UTC
-- text with microseconds, so text order is time order.

CREATE TABLE commits (
    sha          TEXT PRIMARY KEY,
    committed_at TEXT NOT NULL,
    data         TEXT NOT NULL
);

CREATE TABLE runs (
    id            BIGINT PRIMARY KEY,
    workflow_file TEXT NOT NULL,
    head_branch   TEXT NOT NULL,
    head_sha      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX runs_branch_created ON runs (head_branch, created_at);
CREATE INDEX runs_sha ON runs (head_sha);

CREATE TABLE deploys (
    id          TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX deploys_environment_created ON deploys (environment, created_at);

-- The rows of each environment's alembic_version (JSON), when last read.
CREATE TABLE database_state (
    environment TEXT PRIMARY KEY,
    versions    TEXT NOT NULL,
    read_at     TEXT NOT NULL
);

-- Per environment and upstream source: the last ETag, the last success and
-- the last failure, for conditional requests, back-off and stale banners.
CREATE TABLE sync_state (
    environment     TEXT NOT NULL,
    source          TEXT NOT NULL,
    etag            TEXT,
    last_ok_at      TEXT,
    last_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    failures        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, source)
);

-- Webhook deliveries already processed, so a redelivery is a no-op.
CREATE TABLE webhook_deliveries (
    source      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
