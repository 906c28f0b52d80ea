-- Files sent in messages (SQLite dialect). The bytes live in the database beside their
-- description, so a backup or a move to another database takes them along. A message keeps a JSON
-- copy of its attachment's description (id, name, type, size), so transcripts need no join.
-- The attachments table of 0001 (files on disk, rows per conversation) was never written by any
-- release, so it is always empty: it is replaced, not migrated.
DROP TABLE attachments;
CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id    TEXT    NOT NULL UNIQUE,
    site_id      INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_id   INTEGER REFERENCES visitors (id) ON DELETE CASCADE,
    agent_id     INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_site_created ON attachments (site_id, created_at);
ALTER TABLE messages ADD COLUMN attachment TEXT;
