-- Agents' notes on a leave-message (SQLite dialect): what was done about it, including the
-- replies sent by e-mail, so a colleague picking it up sees the whole story.
CREATE TABLE leave_message_notes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    leave_message_id INTEGER NOT NULL REFERENCES leave_messages (id) ON DELETE CASCADE,
    agent_id         INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    body             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX leave_message_notes_message ON leave_message_notes (leave_message_id, id);
CREATE INDEX leave_messages_site_status ON leave_messages (site_id, status, created_at, id);
