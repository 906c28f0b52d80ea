-- A conversation transferred to a team waits for that team's agents only (MySQL/MariaDB dialect).
ALTER TABLE conversations ADD COLUMN team_id BIGINT NULL,
    ADD CONSTRAINT conversations_team_fk FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE SET NULL;
