-- Until when a pending conversation is snoozed (PostgreSQL dialect), in Unix milliseconds; NULL when
-- it is not. The server reopens it then, or earlier when the visitor writes; any other status
-- change ends the snooze.
ALTER TABLE conversations ADD COLUMN snoozed_until BIGINT;
CREATE INDEX conversations_snoozed ON conversations (snoozed_until);
