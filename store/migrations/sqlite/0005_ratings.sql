-- Visitors' ratings of resolved conversations (CSAT, 1 to 5, with an optional comment)
-- (SQLite dialect). One per conversation: rating again replaces it.
CREATE TABLE ratings (
    conversation_id INTEGER NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    score           INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment         TEXT,
    created_at      INTEGER NOT NULL
) STRICT;
