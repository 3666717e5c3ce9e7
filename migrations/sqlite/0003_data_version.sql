-- A counter the sync bumps after every write, so readers can cache what
-- they built from the synced data until it changes.
CREATE TABLE data_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO data_version (id, version) VALUES (1, 0);
