-- API tokens: random, shown once, stored only as their SHA-256; a token
-- acts with its user's role, and stops working when revoked or when its
-- user is disabled.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    label       TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  TEXT
);
