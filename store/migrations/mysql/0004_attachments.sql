-- Files sent in messages (MySQL/MariaDB dialect). The bytes live in the database beside their
-- description, so a backup or a move to another database takes them along. A message keeps a JSON
-- copy of its attachment's description (id, name, type, size), so transcripts need no join.
-- The attachments table of 0001 (files on disk, rows per conversation) was never written by any
-- release, so it is always empty: it is replaced, not migrated.
-- Files are at most 10 MiB: under the servers' default max_allowed_packet of 16 MiB.
DROP TABLE attachments;
CREATE TABLE attachments (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    public_id    VARCHAR(32)  NOT NULL,
    site_id      BIGINT       NOT NULL,
    visitor_id   BIGINT,
    agent_id     BIGINT,
    name         VARCHAR(255) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size         BIGINT       NOT NULL,
    data         LONGBLOB     NOT NULL,
    created_at   BIGINT       NOT NULL,
    UNIQUE KEY attachments_public_id (public_id),
    INDEX attachments_site_created (site_id, created_at),
    CONSTRAINT attachments_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT attachments_visitor FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE CASCADE,
    CONSTRAINT attachments_agent FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
ALTER TABLE messages ADD COLUMN attachment TEXT;
