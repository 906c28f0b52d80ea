-- Tags on conversations (SQLite dialect): short labels agents put on a chat ("refund",
-- "vip"), for the inbox and for history filters.
CREATE TABLE conversation_tags (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tag             TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, tag)
) STRICT;
CREATE INDEX conversation_tags_tag ON conversation_tags (tag, conversation_id);
