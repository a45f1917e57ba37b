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
-- their groups gave at the last look (`role`) and when to look again (`refresh_at`).
ALTER TABLE sessions ALTER COLUMN api_key_id DROP NOT NULL;
ALTER TABLE sessions ADD COLUMN person_id TEXT REFERENCES people (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN role TEXT;
ALTER TABLE sessions ADD COLUMN refresh_at BIGINT;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD CONSTRAINT sessions_one_holder
    CHECK ((api_key_id IS NULL) <> (person_id IS NULL));
ALTER TABLE sessions ADD CONSTRAINT sessions_person_role
    CHECK ((person_id IS NULL) = (role IS NULL) AND (person_id IS NULL) = (refresh_at IS NULL));
CREATE INDEX sessions_by_person ON sessions (person_id);
CREATE INDEX sessions_by_workspace ON sessions (workspace_id, created_at);
