-- A conversation transferred to a team waits for that team's agents only (PostgreSQL dialect).
ALTER TABLE conversations ADD COLUMN team_id BIGINT REFERENCES teams (id) ON DELETE SET NULL;
