DROP INDEX pipeline_events_by_commit;
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha);
DROP INDEX deployments_by_environment_time;
