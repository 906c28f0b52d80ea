-- Visitors' ratings of resolved conversations (CSAT, 1 to 5, with an optional comment)
-- (PostgreSQL dialect). One per conversation: rating again replaces it.
CREATE TABLE ratings (
    conversation_id BIGINT NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    score           BIGINT NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment         TEXT,
    created_at      BIGINT NOT NULL
);
