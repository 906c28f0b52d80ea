-- Full-text search over messages and leave-messages (MySQL/MariaDB dialect).
--
-- MariaDB has no ngram parser, and InnoDB's own parser keeps a CJK sentence as one word and
-- drops words shorter than innodb_ft_min_token_size (3, a server setting). So the server cuts
-- text into tokens itself (store/src/search.rs: words, and CJK character pairs), pads tokens
-- shorter than three characters with '_' (a word character to InnoDB) and stores them
-- space-separated in search_text; the FULLTEXT index only has to split on the spaces.
-- Stopwords are switched off for the index ("the", "will" must be findable); InnoDB takes the
-- setting when an index is built, so a later migration that rebuilds these indexes must too.
ALTER TABLE messages ADD COLUMN search_text MEDIUMTEXT NULL;
ALTER TABLE leave_messages ADD COLUMN search_text MEDIUMTEXT NULL;
SET SESSION innodb_ft_enable_stopword = OFF;
CREATE FULLTEXT INDEX messages_search ON messages (search_text);
CREATE FULLTEXT INDEX leave_messages_search ON leave_messages (search_text);

-- Rows stored before this migration are indexed by the server when it starts, up to these ids.
INSERT INTO settings (`key`, value)
    SELECT 'search_backfill_messages', CAST(MAX(id) AS CHAR) FROM messages HAVING MAX(id) IS NOT NULL;
INSERT INTO settings (`key`, value)
    SELECT 'search_backfill_leave_messages', CAST(MAX(id) AS CHAR) FROM leave_messages
    HAVING MAX(id) IS NOT NULL;
