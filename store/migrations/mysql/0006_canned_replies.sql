-- Canned replies: text an agent inserts by typing /shortcut (MySQL/MariaDB dialect). A reply belongs to a
-- site; with agent_id set it is that agent's own, otherwise every agent of the site sees it.
CREATE TABLE canned_replies (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id    BIGINT       NOT NULL,
    agent_id   BIGINT,
    shortcut   VARCHAR(32)  NOT NULL,
    body       TEXT         NOT NULL,
    created_at BIGINT       NOT NULL,
    INDEX canned_replies_site (site_id, shortcut),
    CONSTRAINT canned_replies_site_fk FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT canned_replies_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
