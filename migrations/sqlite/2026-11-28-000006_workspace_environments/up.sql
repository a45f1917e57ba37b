-- Environments belong to the workspace (Envtracker's model: created with a team, named by no
-- project), so an environment code is unique in the workspace, and projects' applications are
-- assigned or deployed to the workspace's environments.
--
-- Environments that shared one code in several projects become one environment:
--   * the survivor is the oldest of them (by created_at, then id); its name, url, position and
--     team are kept;
--   * its kind is `production` when any of them was `production`, so that no deployment that
--     counted in the DORA metrics before stops counting; otherwise the survivor keeps its own kind
--     (a `staging` and a `testing` environment named alike become the older one's kind);
--   * every deployment, pipeline event, assignment, reference and hook that named one of the
--     others names the survivor instead. No row of those tables is deleted.

-- SQLite cannot drop a column that a constraint uses, so the table is rebuilt, and renaming a
-- table while foreign keys are on would make the other tables' foreign keys follow the old copy.
-- So this migration runs outside diesel's transaction (metadata.toml), turns foreign keys off
-- around its own transaction, and checks them before it commits.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TEMPORARY TABLE environment_merge (
    old_id TEXT PRIMARY KEY NOT NULL,
    new_id TEXT NOT NULL
);

INSERT INTO environment_merge (old_id, new_id)
SELECT e.id,
       (SELECT s.id FROM environments s
        WHERE s.workspace_id = e.workspace_id AND s.code = e.code
        ORDER BY s.created_at, s.id LIMIT 1)
FROM environments e;
DELETE FROM environment_merge WHERE old_id = new_id;

UPDATE environments SET kind = 'production'
WHERE id IN (SELECT new_id FROM environment_merge)
  AND EXISTS (SELECT 1 FROM environment_merge m JOIN environments o ON o.id = m.old_id
              WHERE m.new_id = environments.id AND o.kind = 'production');

UPDATE deployments SET environment_id =
    (SELECT new_id FROM environment_merge WHERE old_id = deployments.environment_id)
WHERE environment_id IN (SELECT old_id FROM environment_merge);
UPDATE pipeline_events SET environment_id =
    (SELECT new_id FROM environment_merge WHERE old_id = pipeline_events.environment_id)
WHERE environment_id IN (SELECT old_id FROM environment_merge);
-- An application belongs to one project, and a project had one environment per code, so an
-- application was never assigned to two of the merged environments: no key collides.
UPDATE application_environments SET environment_id =
    (SELECT new_id FROM environment_merge WHERE old_id = application_environments.environment_id)
WHERE environment_id IN (SELECT old_id FROM environment_merge);
UPDATE change_references SET deployed_environment_id =
    (SELECT new_id FROM environment_merge WHERE old_id = change_references.deployed_environment_id)
WHERE deployed_environment_id IN (SELECT old_id FROM environment_merge);
UPDATE hooks SET environment_id =
    (SELECT new_id FROM environment_merge WHERE old_id = hooks.environment_id)
WHERE environment_id IN (SELECT old_id FROM environment_merge);

-- Nothing names the merged-away environments any more, so deleting them cascades to nothing.
DELETE FROM environments WHERE id IN (SELECT old_id FROM environment_merge);
DROP TABLE environment_merge;

-- The rebuild: the other tables' foreign keys keep naming `environments`, the new table.
CREATE TABLE environments_new (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT,
    position INTEGER NOT NULL,
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, code)
);
INSERT INTO environments_new (id, workspace_id, code, name, kind, url, position, team_id, created_at)
SELECT id, workspace_id, code, name, kind, url, position, team_id, created_at
FROM environments;
DROP TABLE environments;
ALTER TABLE environments_new RENAME TO environments;

-- A commit's first pipeline event other than the deployment's own stays an index-only seek.
DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha, occurred_at, deployment_id);

-- A DORA window filtered by project stays an index-only range scan.
DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments
    (environment_id, deployed_at, status, application_id, id, workspace_id, commit_sha, commit_timestamp, project_id);

-- Any row that names a missing parent fails the CHECK, which stops the script before COMMIT:
-- nothing is committed and diesel does not record the version.
CREATE TEMPORARY TABLE foreign_key_guard (parent TEXT CHECK (parent IS NULL));
INSERT INTO foreign_key_guard SELECT parent FROM pragma_foreign_key_check;
DROP TABLE foreign_key_guard;
COMMIT;
PRAGMA foreign_keys = ON;
