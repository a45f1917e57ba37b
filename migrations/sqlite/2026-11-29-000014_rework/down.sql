DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments
    (environment_id, deployed_at, status, application_id, id, workspace_id, commit_sha, commit_timestamp, project_id, commit_seen_at);
ALTER TABLE projects DROP COLUMN hotfix_patterns;
ALTER TABLE deployments DROP COLUMN rework;
