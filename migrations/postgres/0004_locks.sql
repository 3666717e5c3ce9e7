-- An environment's lock: while it holds, the gate tells the deploy workflow
-- not to deploy (a rolled-back environment stays rolled back).
CREATE TABLE environment_locks (
    environment TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    locked_by   TEXT NOT NULL,
    locked_at   TEXT NOT NULL
);
