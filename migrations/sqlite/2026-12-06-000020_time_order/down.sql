DROP INDEX deployments_by_project_time;
DROP INDEX deployments_by_workspace_time;
CREATE INDEX deployments_by_workspace ON deployments (workspace_id, seq);
CREATE INDEX deployments_by_project ON deployments (project_id, seq);
