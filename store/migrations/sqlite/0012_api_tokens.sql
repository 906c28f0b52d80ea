-- REST API tokens (SQLite dialect): each belongs to an admin and acts as them. Only the
-- token's SHA-256 is stored; `prefix` (its first characters) lets the admin tell tokens apart.
-- `last_used_at` is refreshed at most once a minute, so API traffic does not turn into writes.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id     INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_agent ON api_tokens (agent_id);
