-- Nothing to change on SQLite. On PostgreSQL this version puts the fingerprint and the
-- idempotency key before the workspace in their unique keys, for the generic plan of the
-- ingest's lookup. SQLite plans a statement when it prepares it, and finds these rows through
-- its unique keys (workspace_id, fingerprint) and (workspace_id, idempotency_key) as they are
-- (checked by `ingest::tests`).
SELECT 1;
