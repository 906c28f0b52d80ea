-- Visitors' ratings of resolved conversations (CSAT, 1 to 5, with an optional comment)
-- (MySQL/MariaDB dialect). One per conversation: rating again replaces it.
CREATE TABLE ratings (
    conversation_id BIGINT NOT NULL PRIMARY KEY,
    score           BIGINT NOT NULL,
    comment         TEXT,
    created_at      BIGINT NOT NULL,
    CONSTRAINT ratings_score CHECK (score BETWEEN 1 AND 5),
    CONSTRAINT ratings_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
