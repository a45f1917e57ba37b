-- Dashboard sessions: opened with an API key, which they act as. Only the secret's hash is
-- stored. Revoking (deleting) the key deletes its sessions.
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_key ON sessions (api_key_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
