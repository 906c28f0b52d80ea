-- Real-time hub support (MySQL 8 / MariaDB 10.5+ dialect): settings, bans and the durable agent
-- event log.
--
-- Same file name and same tables in migrations/sqlite and migrations/postgres. InnoDB, utf8mb4
-- and the binary collation as in 0001.

-- Installation-wide values the nodes must agree on (e.g. the token-signing secret). Written once
-- with an insert-if-absent, so nodes starting together all read the same value.
CREATE TABLE settings (
    `key` VARCHAR(191) NOT NULL PRIMARY KEY,
    value TEXT         NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A ban blocks a visitor, an address range, or both, on one site until `expires_at` (NULL:
-- forever). `ip_cidr` is text ("203.0.113.0/24", "2001:db8::1"); the server matches addresses.
-- Deleting the visitor deletes their bans: a ban that lost its target must not widen to everyone.
CREATE TABLE bans (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id    BIGINT      NOT NULL,
    visitor_id BIGINT,
    ip_cidr    VARCHAR(64),
    reason     TEXT        NOT NULL,
    expires_at BIGINT,
    created_at BIGINT      NOT NULL,
    INDEX bans_site (site_id, expires_at),
    INDEX bans_visitor (visitor_id),
    CONSTRAINT bans_target CHECK (visitor_id IS NOT NULL OR ip_cidr IS NOT NULL),
    CONSTRAINT bans_site_fk FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT bans_visitor_fk FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- What agents' consoles must learn about (a conversation was created, its assignment changed …).
-- `id` is the event sequence number consoles resume from; `payload` is JSON owned by the server.
CREATE TABLE events (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id         BIGINT      NOT NULL,
    kind            VARCHAR(32) NOT NULL,
    conversation_id BIGINT      NOT NULL,
    payload         MEDIUMTEXT  NOT NULL,
    created_at      BIGINT      NOT NULL,
    INDEX events_site_id (site_id, id),
    INDEX events_conversation (conversation_id),
    CONSTRAINT events_site_fk FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT events_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row that appending an event locks, so event ids become visible in id order and a reader's
-- "after id N" never skips an event whose transaction committed after a later one's.
CREATE TABLE event_lock (
    id INT NOT NULL PRIMARY KEY,
    CONSTRAINT event_lock_single CHECK (id = 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO event_lock (id) VALUES (1);
