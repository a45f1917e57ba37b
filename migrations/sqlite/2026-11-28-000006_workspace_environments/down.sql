-- Back to environments per project. This loses information: each environment goes to the
-- project of the oldest application assigned or deployed to it, else to the workspace's oldest
-- project; an environment of a workspace without projects is deleted. Environments merged by
-- the up migration are not split again. Run outside diesel's transaction, like up.sql.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE environments_old_layout (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT,
    position INTEGER NOT NULL,
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, code)
);
INSERT INTO environments_old_layout (id, workspace_id, project_id, code, name, kind, url, position, team_id, created_at)
SELECT * FROM (
    SELECT e.id, e.workspace_id,
           COALESCE(
               (SELECT a.project_id FROM applications a
                WHERE a.id IN (SELECT application_id FROM application_environments WHERE environment_id = e.id)
                   OR a.id IN (SELECT application_id FROM deployments WHERE environment_id = e.id)
                ORDER BY a.created_at, a.id LIMIT 1),
               (SELECT p.id FROM projects p WHERE p.workspace_id = e.workspace_id
                ORDER BY p.created_at, p.id LIMIT 1)) AS project_id,
           e.code, e.name, e.kind, e.url, e.position, e.team_id, e.created_at
    FROM environments e)
WHERE project_id IS NOT NULL;
DROP TABLE environments;
ALTER TABLE environments_old_layout RENAME TO environments;
CREATE INDEX environments_by_workspace ON environments (workspace_id);

DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha, occurred_at);

DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments
    (environment_id, deployed_at, status, application_id, id, workspace_id, commit_sha, commit_timestamp);

CREATE TEMPORARY TABLE foreign_key_guard (parent TEXT CHECK (parent IS NULL));
INSERT INTO foreign_key_guard SELECT parent FROM pragma_foreign_key_check;
DROP TABLE foreign_key_guard;
COMMIT;
PRAGMA foreign_keys = ON;
