-- Incidents: something broken in an environment, from PagerDuty, Opsgenie or the API. One row per
-- project, source and the source's own id, however many updates the source sends. changed_at is the
-- source's time of the update that decided resolved_at (later updates win; see
-- shiplog_domain::incident::settle). No application: the whole project; no environment: every
-- production environment. The blamed_* columns name its cause, if it has one.
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    application_id TEXT REFERENCES applications (id) ON DELETE SET NULL,
    environment_id TEXT REFERENCES environments (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    severity TEXT,
    url TEXT,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    integration_id TEXT REFERENCES integrations (id) ON DELETE SET NULL,
    opened_at BIGINT NOT NULL,
    resolved_at BIGINT,
    changed_at BIGINT NOT NULL,
    blamed_deployment_id TEXT,
    blamed_commit TEXT,
    blamed_reference TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, project_id, source, external_id)
);
-- Listing newest first, and DORA's "opened from the window's start on".
CREATE INDEX incidents_by_opening ON incidents (workspace_id, opened_at, id);
