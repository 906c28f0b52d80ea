-- Kefu initial schema (SQLite dialect).
--
-- Same file name and same tables in migrations/postgres and migrations/mysql. Timestamps are UTC
-- Unix milliseconds in a 64-bit integer on every backend, so values compare and page identically.
-- JSON values (allowed origins, widget settings) are plain text written and read by the store.
-- STRICT tables make SQLite reject a value of the wrong type instead of storing it silently.

CREATE TABLE sites (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    public_key      TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    allowed_origins TEXT    NOT NULL,
    widget_settings TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'agent')),
    language      TEXT    NOT NULL,
    max_chats     INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE teams (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    name    TEXT    NOT NULL
) STRICT;
CREATE INDEX teams_site ON teams (site_id);

CREATE TABLE team_members (
    team_id  INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
) STRICT;
CREATE INDEX team_members_agent ON team_members (agent_id);

CREATE TABLE site_agents (
    site_id  INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (site_id, agent_id)
) STRICT;
CREATE INDEX site_agents_agent ON site_agents (agent_id, site_id);

CREATE TABLE visitors (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id      INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_key  TEXT    NOT NULL,
    name         TEXT,
    email        TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (site_id, visitor_key)
) STRICT;

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id     INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_id  INTEGER NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    status      TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
    assignee_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_site_updated ON conversations (site_id, updated_at, id);
CREATE INDEX conversations_visitor ON conversations (visitor_id);
CREATE INDEX conversations_assignee ON conversations (assignee_id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    client_id       TEXT    NOT NULL,
    author          TEXT    NOT NULL CHECK (author IN ('visitor', 'agent', 'system')),
    agent_id        INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, client_id)
) STRICT;
CREATE INDEX messages_agent ON messages (agent_id);

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    file_name       TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    storage_key     TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_conversation ON attachments (conversation_id);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE leave_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id     INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_id  INTEGER REFERENCES visitors (id) ON DELETE SET NULL,
    name        TEXT,
    contact     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'in_progress', 'handled')),
    assignee_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX leave_messages_site_created ON leave_messages (site_id, created_at, id);
CREATE INDEX leave_messages_visitor ON leave_messages (visitor_id);
CREATE INDEX leave_messages_assignee ON leave_messages (assignee_id);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_agent ON sessions (agent_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
