-- Full-text search over messages and leave-messages (PostgreSQL dialect).
--
-- The server cuts text into tokens itself (store/src/search.rs: words, and CJK character pairs)
-- and writes them as a tsvector literal with positions, so neither the text-search parser nor
-- the database's locale decides what a word is; a GIN index answers tsquery lookups. NULL until
-- indexed.
ALTER TABLE messages ADD COLUMN search tsvector;
CREATE INDEX messages_search ON messages USING GIN (search);
ALTER TABLE leave_messages ADD COLUMN search tsvector;
CREATE INDEX leave_messages_search ON leave_messages USING GIN (search);

-- Rows stored before this migration are indexed by the server when it starts, up to these ids.
INSERT INTO settings ("key", value)
    SELECT 'search_backfill_messages', MAX(id)::text FROM messages HAVING MAX(id) IS NOT NULL;
INSERT INTO settings ("key", value)
    SELECT 'search_backfill_leave_messages', MAX(id)::text FROM leave_messages
    HAVING MAX(id) IS NOT NULL;
