-- DORA metrics: a window of one environment's deployments is one range scan, and a commit's
-- first pipeline event is one seek that never visits the table.
-- The index covers every column the metrics read, so the scan can be index-only.
CREATE INDEX deployments_by_environment_time ON deployments (environment_id, deployed_at)
    INCLUDE (status, application_id, id, workspace_id, commit_sha, commit_timestamp);
DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha, occurred_at);
