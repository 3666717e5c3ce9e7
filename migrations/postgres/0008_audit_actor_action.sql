-- The review screen's most common question, "what did this person do of
-- this kind, in this time range": equality on actor and action, newest
-- first by seq, with `at` in the index so rows outside the range are
-- skipped without reading them (1,000,000-event benchmark: a page read
-- up to ~17,000 rows to keep 50 without it).
CREATE INDEX audit_events_actor_action ON audit_events (actor_name, action, seq, at);
