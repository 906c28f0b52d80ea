-- Kefu initial schema (MySQL 8 / MariaDB 10.5+ dialect).
--
-- Same file name and same tables in migrations/sqlite and migrations/postgres. Timestamps are UTC
-- Unix milliseconds in a BIGINT on every backend, so values compare and page identically.
-- JSON values (allowed origins, widget settings) are plain text written and read by the store.
-- Every table is InnoDB + utf8mb4 (full Unicode, e.g. Chinese and emoji) with the binary collation,
-- so keys compare exactly as they do on SQLite and PostgreSQL (case- and accent-sensitive).
-- Indexed text columns are VARCHAR(191): 191 * 4 bytes fits every InnoDB index-prefix limit.

CREATE TABLE sites (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    public_key      VARCHAR(191) NOT NULL,
    name            VARCHAR(255) NOT NULL,
    allowed_origins TEXT         NOT NULL,
    widget_settings TEXT         NOT NULL,
    created_at      BIGINT       NOT NULL,
    CONSTRAINT sites_public_key UNIQUE (public_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE agents (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(191) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    display_name  VARCHAR(255) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    language      VARCHAR(35)  NOT NULL,
    max_chats     INT          NOT NULL,
    disabled      BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    BIGINT       NOT NULL,
    CONSTRAINT agents_email UNIQUE (email),
    CONSTRAINT agents_role CHECK (role IN ('admin', 'agent'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE teams (
    id      BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id BIGINT       NOT NULL,
    name    VARCHAR(255) NOT NULL,
    CONSTRAINT teams_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE team_members (
    team_id  BIGINT NOT NULL,
    agent_id BIGINT NOT NULL,
    PRIMARY KEY (team_id, agent_id),
    INDEX team_members_agent (agent_id),
    CONSTRAINT team_members_team FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
    CONSTRAINT team_members_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE site_agents (
    site_id  BIGINT NOT NULL,
    agent_id BIGINT NOT NULL,
    PRIMARY KEY (site_id, agent_id),
    INDEX site_agents_agent (agent_id, site_id),
    CONSTRAINT site_agents_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT site_agents_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE visitors (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id      BIGINT       NOT NULL,
    visitor_key  VARCHAR(191) NOT NULL,
    name         VARCHAR(255),
    email        VARCHAR(255),
    created_at   BIGINT       NOT NULL,
    last_seen_at BIGINT       NOT NULL,
    CONSTRAINT visitors_site_key UNIQUE (site_id, visitor_key),
    CONSTRAINT visitors_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE conversations (
    id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT      NOT NULL,
    visitor_id  BIGINT      NOT NULL,
    status      VARCHAR(16) NOT NULL DEFAULT 'open',
    assignee_id BIGINT,
    last_seq    BIGINT      NOT NULL DEFAULT 0,
    created_at  BIGINT      NOT NULL,
    updated_at  BIGINT      NOT NULL,
    INDEX conversations_site_updated (site_id, updated_at, id),
    INDEX conversations_visitor (visitor_id),
    INDEX conversations_assignee (assignee_id),
    CONSTRAINT conversations_status CHECK (status IN ('open', 'pending', 'resolved')),
    CONSTRAINT conversations_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT conversations_visitor_fk FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE CASCADE,
    CONSTRAINT conversations_assignee_fk FOREIGN KEY (assignee_id) REFERENCES agents (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT       NOT NULL,
    seq             BIGINT       NOT NULL,
    client_id       VARCHAR(191) NOT NULL,
    author          VARCHAR(16)  NOT NULL,
    agent_id        BIGINT,
    body            MEDIUMTEXT   NOT NULL,
    created_at      BIGINT       NOT NULL,
    CONSTRAINT messages_conversation_seq UNIQUE (conversation_id, seq),
    CONSTRAINT messages_conversation_client UNIQUE (conversation_id, client_id),
    INDEX messages_agent (agent_id),
    CONSTRAINT messages_author CHECK (author IN ('visitor', 'agent', 'system')),
    CONSTRAINT messages_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT messages_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE attachments (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT       NOT NULL,
    message_id      BIGINT,
    file_name       VARCHAR(255) NOT NULL,
    content_type    VARCHAR(255) NOT NULL,
    size            BIGINT       NOT NULL,
    storage_key     VARCHAR(191) NOT NULL,
    created_at      BIGINT       NOT NULL,
    CONSTRAINT attachments_storage_key UNIQUE (storage_key),
    INDEX attachments_conversation (conversation_id),
    INDEX attachments_message (message_id),
    CONSTRAINT attachments_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT attachments_message_fk FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE leave_messages (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT       NOT NULL,
    visitor_id  BIGINT,
    name        VARCHAR(255),
    contact     VARCHAR(255) NOT NULL,
    body        TEXT         NOT NULL,
    status      VARCHAR(16)  NOT NULL DEFAULT 'new',
    assignee_id BIGINT,
    created_at  BIGINT       NOT NULL,
    INDEX leave_messages_site_created (site_id, created_at, id),
    INDEX leave_messages_visitor (visitor_id),
    INDEX leave_messages_assignee (assignee_id),
    CONSTRAINT leave_messages_status CHECK (status IN ('new', 'in_progress', 'handled')),
    CONSTRAINT leave_messages_site FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE,
    CONSTRAINT leave_messages_visitor_fk FOREIGN KEY (visitor_id) REFERENCES visitors (id) ON DELETE SET NULL,
    CONSTRAINT leave_messages_assignee_fk FOREIGN KEY (assignee_id) REFERENCES agents (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    token_hash VARCHAR(191) NOT NULL PRIMARY KEY,
    agent_id   BIGINT       NOT NULL,
    created_at BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL,
    INDEX sessions_agent (agent_id),
    INDEX sessions_expires (expires_at),
    CONSTRAINT sessions_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
