-- Keys have a lifecycle: an optional expiry, and when each was last used (written at most once a
-- minute per key, so authentication does not become a write per request). Revoking a key deletes
-- its row: it stops working at once.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN last_used_at BIGINT;
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, created_at);
CREATE INDEX signing_keys_by_workspace ON signing_keys (workspace_id, created_at);
