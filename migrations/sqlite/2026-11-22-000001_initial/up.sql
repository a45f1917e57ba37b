-- shiplog initial schema (SQLite). Times are microseconds since the Unix epoch (BIGINT);
-- ids are UUID text. `seq` columns give a stable insertion order for cursors.

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    environment_limit INTEGER,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, slug)
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, code)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    secret TEXT NOT NULL,
    role TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE applications (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    repo TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, code)
);
CREATE INDEX applications_by_repo ON applications (workspace_id, repo);

CREATE TABLE environments (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT,
    position INTEGER NOT NULL,
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, code)
);
CREATE INDEX environments_by_workspace ON environments (workspace_id);

CREATE TABLE application_environments (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (application_id, environment_id)
);

CREATE TABLE deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    payload_fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_status TEXT NOT NULL,
    status_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    deployed_at BIGINT NOT NULL,
    external_id TEXT,
    commit_sha TEXT,
    commit_message TEXT,
    commit_timestamp BIGINT,
    git_ref TEXT,
    branch TEXT,
    run_url TEXT,
    deployed_by TEXT,
    build_number TEXT,
    image TEXT,
    logs_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX deployments_by_workspace ON deployments (workspace_id, seq);
CREATE INDEX deployments_by_project ON deployments (project_id, seq);

CREATE TABLE pipeline_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    environment_id TEXT REFERENCES environments (id) ON DELETE CASCADE,
    deployment_id TEXT REFERENCES deployments (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_status TEXT,
    status TEXT NOT NULL,
    commit_sha TEXT,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    UNIQUE (workspace_id, fingerprint)
);
CREATE INDEX pipeline_events_by_deployment ON pipeline_events (deployment_id);
CREATE INDEX pipeline_events_by_commit ON pipeline_events (workspace_id, commit_sha);

-- "references" is an SQL keyword, hence change_references.
CREATE TABLE change_references (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    ref_key TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    deployed_at BIGINT,
    deployed_environment_id TEXT REFERENCES environments (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, ref_key)
);

CREATE TABLE deployment_references (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    ref_key TEXT NOT NULL,
    project_id TEXT NOT NULL,
    closing BOOLEAN NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, ref_key)
);
CREATE INDEX deployment_references_by_key ON deployment_references (project_id, ref_key);

-- Status changes, written in the same transaction as the change; the delivery worker
-- turns them into outgoing hook deliveries.
CREATE TABLE outbox_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    status_from TEXT,
    status_to TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE INDEX outbox_events_pending ON outbox_events (processed_at, seq);
