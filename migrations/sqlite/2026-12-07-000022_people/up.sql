-- People who sign in through the company's OpenID provider (docs/sso.md): one row per
-- issuer and subject, recorded at their first sign-in, name and email as of the last.
CREATE TABLE people (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    signed_in_at BIGINT NOT NULL,
    UNIQUE (issuer, subject)
);

-- A session now acts either as the API key it was opened with or for a person, with the role
-- their groups gave at the last look (`role`) and when to look again (`refresh_at`). SQLite
-- cannot drop a NOT NULL, so the table is rebuilt; its sessions are kept.
CREATE TABLE sessions_new (
    hash TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    api_key_id TEXT REFERENCES api_keys (id) ON DELETE CASCADE,
    person_id TEXT REFERENCES people (id) ON DELETE CASCADE,
    role TEXT,
    refresh_at BIGINT,
    address TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CHECK ((api_key_id IS NULL) <> (person_id IS NULL)),
    CHECK ((person_id IS NULL) = (role IS NULL) AND (person_id IS NULL) = (refresh_at IS NULL))
);
INSERT INTO sessions_new (hash, workspace_id, api_key_id, created_at, expires_at)
    SELECT hash, workspace_id, api_key_id, created_at, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_by_key ON sessions (api_key_id);
CREATE INDEX sessions_by_person ON sessions (person_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_workspace ON sessions (workspace_id, created_at);
