-- Full-text search over messages and leave-messages (SQLite dialect).
--
-- The server cuts text into tokens itself (store/src/search.rs: words, and CJK character pairs)
-- and writes them space-separated; FTS5's unicode61 tokenizer splits on the spaces and indexes
-- each token whole. The tables are contentless (the text lives in messages), keyed by the row's
-- id, and deletable, so deleting a message (or its conversation) removes it from the index.
CREATE VIRTUAL TABLE messages_fts USING fts5 (tokens, content = '', contentless_delete = 1);
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;

CREATE VIRTUAL TABLE leave_messages_fts USING fts5 (tokens, content = '', contentless_delete = 1);
CREATE TRIGGER leave_messages_fts_delete AFTER DELETE ON leave_messages BEGIN
    DELETE FROM leave_messages_fts WHERE rowid = old.id;
END;

-- Rows stored before this migration are indexed by the server when it starts, up to these ids.
INSERT INTO settings ("key", value)
    SELECT 'search_backfill_messages', CAST(MAX(id) AS TEXT) FROM messages HAVING MAX(id) IS NOT NULL;
INSERT INTO settings ("key", value)
    SELECT 'search_backfill_leave_messages', CAST(MAX(id) AS TEXT) FROM leave_messages
    HAVING MAX(id) IS NOT NULL;
