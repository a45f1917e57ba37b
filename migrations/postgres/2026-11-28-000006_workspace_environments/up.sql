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

CREATE TEMPORARY TABLE environment_merge AS
SELECT e.id AS old_id,
       first_value(e.id) OVER (PARTITION BY e.workspace_id, e.code ORDER BY e.created_at, e.id) AS new_id
FROM environments e;
DELETE FROM environment_merge WHERE old_id = new_id;

UPDATE environments s SET kind = 'production'
WHERE EXISTS (SELECT 1 FROM environment_merge m JOIN environments o ON o.id = m.old_id
              WHERE m.new_id = s.id AND o.kind = 'production');

UPDATE deployments t SET environment_id = m.new_id
FROM environment_merge m WHERE t.environment_id = m.old_id;
UPDATE pipeline_events t SET environment_id = m.new_id
FROM environment_merge m WHERE t.environment_id = m.old_id;
-- An application belongs to one project, and a project had one environment per code, so an
-- application was never assigned to two of the merged environments: no key collides.
UPDATE application_environments t SET environment_id = m.new_id
FROM environment_merge m WHERE t.environment_id = m.old_id;
UPDATE change_references t SET deployed_environment_id = m.new_id
FROM environment_merge m WHERE t.deployed_environment_id = m.old_id;
UPDATE hooks t SET environment_id = m.new_id
FROM environment_merge m WHERE t.environment_id = m.old_id;

-- Nothing names the merged-away environments any more, so deleting them cascades to nothing.
DELETE FROM environments WHERE id IN (SELECT old_id FROM environment_merge);
DROP TABLE environment_merge;

-- Dropping the column drops the per-project unique constraint with it.
ALTER TABLE environments DROP COLUMN project_id;
ALTER TABLE environments ADD CONSTRAINT environments_workspace_id_code_key UNIQUE (workspace_id, code);
DROP INDEX environments_by_workspace;

-- A commit's first pipeline event other than the deployment's own stays an index-only seek.
DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha, occurred_at)
    INCLUDE (deployment_id);

-- A DORA window filtered by project stays an index-only range scan.
DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments (environment_id, deployed_at)
    INCLUDE (status, application_id, id, workspace_id, commit_sha, commit_timestamp, project_id);
