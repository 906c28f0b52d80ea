-- Canned replies: text an agent inserts by typing /shortcut (SQLite dialect). A reply belongs to a
-- site; with agent_id set it is that agent's own, otherwise every agent of the site sees it.
CREATE TABLE canned_replies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    agent_id   INTEGER REFERENCES agents (id) ON DELETE CASCADE,
    shortcut   TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX canned_replies_site ON canned_replies (site_id, shortcut);
