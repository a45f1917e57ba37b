DROP INDEX signing_keys_by_workspace;
DROP INDEX api_keys_by_workspace;
ALTER TABLE signing_keys DROP COLUMN last_used_at;
ALTER TABLE signing_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN expires_at;
