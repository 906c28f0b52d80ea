-- Translation (SQLite dialect). `message_translations` holds a message's translation for the
-- other side of the chat, or where getting it stands (pending, failed and to be retried);
-- `translation_cache` answers a text seen before without asking the provider again (keyed by
-- the text's SHA-256, the languages and the provider); `translation_usage` counts the
-- characters each site sent to the provider per UTC day, against its daily budget.
CREATE TABLE message_translations (
    message_id      INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    source_language TEXT    NOT NULL,
    target_language TEXT    NOT NULL,
    text            TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX message_translations_state ON message_translations (state, updated_at);

CREATE TABLE translation_cache (
    text_hash       TEXT    NOT NULL,
    source_language TEXT    NOT NULL,
    target_language TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    translation     TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (text_hash, source_language, target_language, provider)
) STRICT;

CREATE TABLE translation_usage (
    site_id INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day     INTEGER NOT NULL,
    chars   INTEGER NOT NULL,
    PRIMARY KEY (site_id, day)
) STRICT;
