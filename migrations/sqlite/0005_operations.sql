-- Operations started from the panel (rollbacks, deploys): persisted with
-- their ordered steps, so an operation survives a crash of the panel.
CREATE TABLE operations (
    id              TEXT PRIMARY KEY,
    environment     TEXT NOT NULL,
    kind            TEXT NOT NULL,              -- rollback | deploy
    state           TEXT NOT NULL,              -- awaiting_approval | running | succeeded | failed | needs_attention
    active          INTEGER NOT NULL DEFAULT 1, -- 1 until it ends or a lead resolves it
    request         TEXT NOT NULL,              -- JSON: what was asked, resolved
    plan            TEXT NOT NULL,              -- JSON: the plan it started from
    requested_by    TEXT NOT NULL,
    requested_role  TEXT NOT NULL,
    break_glass     INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    approved_by     TEXT,
    runner          TEXT,                       -- the panel process carrying it out
    lease_until     TEXT,                       -- until when that process holds it
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    error           TEXT
);

-- One active operation per environment, across every panel on this store.
CREATE UNIQUE INDEX operations_one_active ON operations (environment) WHERE active = 1;
-- The same Idempotency-Key from the same person is the same operation.
CREATE UNIQUE INDEX operations_idempotency ON operations (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX operations_by_environment ON operations (environment, created_at);

CREATE TABLE operation_steps (
    operation_id TEXT NOT NULL REFERENCES operations (id),
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    title        TEXT NOT NULL,
    state        TEXT NOT NULL,                 -- pending | running | done | failed | skipped
    started_at   TEXT,                          -- the intent, written before calling out
    finished_at  TEXT,                          -- the outcome, written after
    upstream_id  TEXT,
    upstream_url TEXT,
    detail       TEXT,
    log          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (operation_id, position)
);

-- A lock an operation took names it, so a resumed operation knows its own.
ALTER TABLE environment_locks ADD COLUMN operation_id TEXT;
