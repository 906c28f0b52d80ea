-- When each agent was last given a conversation automatically (SQLite dialect), in Unix
-- milliseconds (0: never): the round-robin turn, kept in the database so every server node
-- sharing it takes turns in the same order.
ALTER TABLE agents ADD COLUMN last_assigned_at INTEGER NOT NULL DEFAULT 0;
