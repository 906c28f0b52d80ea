-- The browser's language, as the widget last said (PostgreSQL dialect): the language a visitor
-- is answered in when their messages are too short to tell.
ALTER TABLE visitors ADD COLUMN language TEXT;
