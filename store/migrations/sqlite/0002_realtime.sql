-- Real-time hub support (SQLite dialect): settings, bans and the durable agent event log.
--
-- Same file name and same tables in migrations/postgres and migrations/mysql.

-- Installation-wide values the nodes must agree on (e.g. the token-signing secret). Written once
-- with an insert-if-absent, so nodes starting together all read the same value.
CREATE TABLE settings (
    "key" TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- A ban blocks a visitor, an address range, or both, on one site until `expires_at` (NULL:
-- forever). `ip_cidr` is text ("203.0.113.0/24", "2001:db8::1"); the server matches addresses.
-- Deleting the visitor deletes their bans: a ban that lost its target must not widen to everyone.
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_id INTEGER REFERENCES visitors (id) ON DELETE CASCADE,
    ip_cidr    TEXT,
    reason     TEXT    NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    CHECK (visitor_id IS NOT NULL OR ip_cidr IS NOT NULL)
) STRICT;
CREATE INDEX bans_site ON bans (site_id, expires_at);
CREATE INDEX bans_visitor ON bans (visitor_id);

-- What agents' consoles must learn about (a conversation was created, its assignment changed …).
-- `id` is the event sequence number consoles resume from; `payload` is JSON owned by the server.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id         INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX events_site_id ON events (site_id, id);
CREATE INDEX events_conversation ON events (conversation_id);

-- One row that appending an event locks, so event ids become visible in id order and a reader's
-- "after id N" never skips an event committed late. SQLite's single writer already guarantees
-- that; the table exists here only so the three schemas match.
CREATE TABLE event_lock (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1)
) STRICT;
INSERT INTO event_lock (id) VALUES (1);
