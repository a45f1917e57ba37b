ALTER TABLE deployments
    DROP CONSTRAINT deployments_idempotency_key_workspace_id_key,
    ADD CONSTRAINT deployments_workspace_id_idempotency_key_key UNIQUE (workspace_id, idempotency_key);
ALTER TABLE pipeline_events
    DROP CONSTRAINT pipeline_events_fingerprint_workspace_id_key,
    ADD CONSTRAINT pipeline_events_workspace_id_fingerprint_key UNIQUE (workspace_id, fingerprint);
