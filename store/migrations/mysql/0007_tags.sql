-- Tags on conversations (MySQL/MariaDB dialect): short labels agents put on a chat ("refund",
-- "vip"), for the inbox and for history filters.
CREATE TABLE conversation_tags (
    conversation_id BIGINT      NOT NULL,
    tag             VARCHAR(32) NOT NULL,
    PRIMARY KEY (conversation_id, tag),
    INDEX conversation_tags_tag (tag, conversation_id),
    CONSTRAINT conversation_tags_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
