-- When a message first carried each uploaded file (PostgreSQL dialect), in Unix milliseconds; NULL
-- while no message has. The server deletes uploads still unsent an hour after they were made,
-- so files nobody sent do not pile up in the database.
ALTER TABLE attachments ADD COLUMN sent_at BIGINT;
CREATE INDEX attachments_unsent ON attachments (sent_at, created_at);
