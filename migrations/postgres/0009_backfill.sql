-- Where each source's backfill (the first sync's walk back through the
-- upstream's history, down to `sync.history_days`) stands, as JSON: its
-- horizon, the next page to read, or that it is done. NULL: not started.
-- Kept after every page, so a restart continues instead of starting over.
ALTER TABLE sync_state ADD COLUMN backfill TEXT;
