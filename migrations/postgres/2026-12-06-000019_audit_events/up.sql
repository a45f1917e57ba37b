-- The audit log (crates/app/src/audit.rs): who changed what, when, from which address. No
-- foreign key: the entries of a deleted workspace, its deletion first, stay readable (by the
-- master key) until retention removes them.
CREATE TABLE audit_events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT,
    workspace_code TEXT,
    at BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_name TEXT,
    address TEXT
);
CREATE INDEX audit_events_by_workspace ON audit_events (workspace_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (at);
-- Retention removes the oldest rows of these tables in batches, by time.
CREATE INDEX pipeline_events_by_time ON pipeline_events (received_at);
CREATE INDEX hook_deliveries_by_time ON hook_deliveries (created_at);
-- A status change's outbox row goes once none of its deliveries is left.
CREATE INDEX hook_deliveries_by_outbox_event ON hook_deliveries (outbox_event_id);
