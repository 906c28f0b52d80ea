-- REST API tokens (MySQL/MariaDB dialect): each belongs to an admin and acts as them. Only
-- the token's SHA-256 is stored; `prefix` (its first characters) lets the admin tell tokens
-- apart. `last_used_at` is refreshed at most once a minute, so API traffic does not turn into
-- writes.
CREATE TABLE api_tokens (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    agent_id     BIGINT NOT NULL,
    name         VARCHAR(255) NOT NULL,
    token_hash   VARCHAR(191) NOT NULL,
    prefix       VARCHAR(32)  NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    UNIQUE KEY api_tokens_hash (token_hash),
    INDEX api_tokens_agent (agent_id),
    CONSTRAINT api_tokens_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
