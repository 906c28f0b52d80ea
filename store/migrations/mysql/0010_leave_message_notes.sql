-- Agents' notes on a leave-message (MySQL/MariaDB dialect): what was done about it, including
-- the replies sent by e-mail, so a colleague picking it up sees the whole story.
CREATE TABLE leave_message_notes (
    id               BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    leave_message_id BIGINT NOT NULL,
    agent_id         BIGINT NULL,
    body             MEDIUMTEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    CONSTRAINT leave_message_notes_message_fk FOREIGN KEY (leave_message_id)
        REFERENCES leave_messages (id) ON DELETE CASCADE,
    CONSTRAINT leave_message_notes_agent_fk FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE SET NULL,
    INDEX leave_message_notes_message (leave_message_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX leave_messages_site_status ON leave_messages (site_id, status, created_at, id);
