-- Whether a conversation's messages are translated (SQLite dialect): on with its site's
-- switch, and an agent may turn it off for one conversation (a visitor who prefers the
-- agent's language).
ALTER TABLE conversations ADD COLUMN translating INTEGER NOT NULL DEFAULT 1;
