-- Outgoing hooks, their deliveries (the outbox rows the worker sends) and every attempt.
-- Deliveries are inserted by the ingest transaction that changes a deployment's status.

CREATE TABLE hooks (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    application_id TEXT REFERENCES applications (id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    action_type TEXT NOT NULL,
    -- Event names separated by single spaces.
    events TEXT NOT NULL,
    method TEXT NOT NULL,
    target_url TEXT NOT NULL,
    -- JSON: [[name, value template], ...]. Values may hold secrets; never returned.
    headers TEXT NOT NULL,
    -- JSON body template, or NULL for the standard envelope.
    body TEXT,
    -- JSON: {name: secret}. Never returned.
    secrets TEXT NOT NULL,
    signing_secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX hooks_by_project ON hooks (project_id, enabled);

CREATE TABLE hook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    hook_id TEXT NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    -- The status change it reports (outbox_events.id); NULL for test sends.
    outbox_event_id TEXT,
    deployment_id TEXT REFERENCES deployments (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    -- pending | delivered | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (status, next_attempt_at);
CREATE INDEX hook_deliveries_by_hook ON hook_deliveries (hook_id, seq);
CREATE INDEX hook_deliveries_by_deployment ON hook_deliveries (deployment_id, seq);

CREATE TABLE hook_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES hook_deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error TEXT,
    response_body TEXT
);
CREATE INDEX hook_attempts_by_delivery ON hook_attempts (delivery_id, seq);
