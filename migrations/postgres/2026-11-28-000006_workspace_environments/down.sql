-- Back to environments per project. This loses information: each environment goes to the
-- project of the oldest application assigned or deployed to it, else to the workspace's oldest
-- project; an environment of a workspace without projects is deleted. Environments merged by
-- the up migration are not split again.
ALTER TABLE environments DROP CONSTRAINT environments_workspace_id_code_key;
ALTER TABLE environments ADD COLUMN project_id TEXT REFERENCES projects (id) ON DELETE CASCADE;
UPDATE environments e SET project_id = COALESCE(
    (SELECT a.project_id FROM applications a
     WHERE a.id IN (SELECT application_id FROM application_environments WHERE environment_id = e.id)
        OR a.id IN (SELECT application_id FROM deployments WHERE environment_id = e.id)
     ORDER BY a.created_at, a.id LIMIT 1),
    (SELECT p.id FROM projects p WHERE p.workspace_id = e.workspace_id
     ORDER BY p.created_at, p.id LIMIT 1));
DELETE FROM environments WHERE project_id IS NULL;
ALTER TABLE environments ALTER COLUMN project_id SET NOT NULL;
ALTER TABLE environments ADD CONSTRAINT environments_project_id_code_key UNIQUE (project_id, code);
CREATE INDEX environments_by_workspace ON environments (workspace_id);

DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha, occurred_at);

DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments (environment_id, deployed_at)
    INCLUDE (status, application_id, id, workspace_id, commit_sha, commit_timestamp);
