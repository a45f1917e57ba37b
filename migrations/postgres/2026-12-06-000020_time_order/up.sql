-- Deployment listings are in each deployment's own time order (deployed_at: finished, else
-- started, else created), newest first, ties broken by id: the arrival-order indexes give way to
-- time-order ones, so an import of older history lands where it belongs.
DROP INDEX deployments_by_workspace;
DROP INDEX deployments_by_project;
CREATE INDEX deployments_by_workspace_time ON deployments (workspace_id, deployed_at, id);
CREATE INDEX deployments_by_project_time ON deployments (project_id, deployed_at, id);
