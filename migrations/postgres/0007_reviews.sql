-- The leads' review queue. Marking an item reviewed writes an
-- `audit.review` event (the record) and, in the same transaction, a row
-- here (the index the queue is read from). Items are `op:<operation id>`
-- (break-glass, failed or needs_attention operations) and `event:<seq>`
-- (refused attempts on a production environment).
CREATE TABLE audit_reviews (
    item         TEXT PRIMARY KEY,
    review_seq   BIGINT NOT NULL,
    reviewed_by  TEXT NOT NULL,
    reviewed_at  TEXT NOT NULL,
    note         TEXT NOT NULL
);

-- An operation's events, and the detail view's "everything about this".
CREATE INDEX audit_events_target ON audit_events (target, seq);

-- Refused attempts, per environment, for the queue.
CREATE INDEX audit_events_denied ON audit_events (environment, seq) WHERE outcome = 'denied';
