-- Translation (MySQL/MariaDB dialect). `message_translations` holds a message's translation
-- for the other side of the chat, or where getting it stands (pending, failed and to be
-- retried); `translation_cache` answers a text seen before without asking the provider again
-- (keyed by the text's SHA-256, the languages and the provider); `translation_usage` counts the
-- characters each site sent to the provider per UTC day, against its daily budget.
CREATE TABLE message_translations (
    message_id      BIGINT      NOT NULL PRIMARY KEY,
    source_language VARCHAR(35) NOT NULL,
    target_language VARCHAR(35) NOT NULL,
    text            MEDIUMTEXT  NULL,
    state           VARCHAR(16) NOT NULL,
    attempts        INT         NOT NULL DEFAULT 0,
    updated_at      BIGINT      NOT NULL,
    CONSTRAINT message_translations_state_check CHECK (state IN ('pending', 'done', 'failed')),
    CONSTRAINT message_translations_message FOREIGN KEY (message_id)
        REFERENCES messages (id) ON DELETE CASCADE,
    INDEX message_translations_state (state, updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE translation_cache (
    text_hash       CHAR(64)    NOT NULL,
    source_language VARCHAR(35) NOT NULL,
    target_language VARCHAR(35) NOT NULL,
    provider        VARCHAR(32) NOT NULL,
    translation     MEDIUMTEXT  NOT NULL,
    created_at      BIGINT      NOT NULL,
    PRIMARY KEY (text_hash, source_language, target_language, provider)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE translation_usage (
    site_id BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    chars   BIGINT NOT NULL,
    PRIMARY KEY (site_id, day),
    CONSTRAINT translation_usage_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
