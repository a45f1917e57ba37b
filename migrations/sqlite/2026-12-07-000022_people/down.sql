CREATE TABLE sessions_old (
    hash TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO sessions_old (hash, workspace_id, api_key_id, created_at, expires_at)
    SELECT hash, workspace_id, api_key_id, created_at, expires_at FROM sessions
    WHERE api_key_id IS NOT NULL;
DROP TABLE sessions;
ALTER TABLE sessions_old RENAME TO sessions;
CREATE INDEX sessions_by_key ON sessions (api_key_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
DROP TABLE people;
