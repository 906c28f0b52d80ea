-- Custom attributes a host page sets on its visitor (plan, order number…), shown to agents
-- (PostgreSQL dialect). A JSON object of strings, written and read by the store like widget_settings.
ALTER TABLE visitors ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
