-- A conversation transferred to a team waits for that team's agents only (SQLite dialect).
ALTER TABLE conversations ADD COLUMN team_id INTEGER REFERENCES teams (id) ON DELETE SET NULL;
