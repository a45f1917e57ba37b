-- Integrations: a provider's own webhooks received at a URL of their own. The secret is stored
-- (checking an HMAC needs it), like a signing key's; it is never returned after creation.
-- The secret before a rotation stays valid until previous_until.
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until BIGINT,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX integrations_by_workspace ON integrations (workspace_id, created_at);

-- What each integration received, newest kept (the store trims to the last 100).
CREATE TABLE integration_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    event TEXT,
    delivery TEXT,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX integration_deliveries_by_integration ON integration_deliveries (integration_id, seq);
