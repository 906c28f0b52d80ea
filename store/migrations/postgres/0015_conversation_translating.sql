-- Whether a conversation's messages are translated (PostgreSQL dialect): on with its site's
-- switch, and an agent may turn it off for one conversation (a visitor who prefers the
-- agent's language).
ALTER TABLE conversations ADD COLUMN translating BOOLEAN NOT NULL DEFAULT TRUE;
