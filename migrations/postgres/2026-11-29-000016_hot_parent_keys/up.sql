-- Each foreign key checked on an insert locks the parent row (FOR KEY SHARE) until the
-- transaction ends. Every ingest of a workspace inserts rows that name the same workspace and
-- project, so concurrent ingests all share-lock those two rows, and PostgreSQL records each new
-- sharer in a multixact that copies every sharer before it. These five keys add nothing the
-- others do not give: a deployment's and an event's application belongs to their project,
-- which belongs to their workspace, and deleting either still reaches them through the
-- application's key (ON DELETE CASCADE); a change request's project belongs to its workspace.
-- The columns stay, written together from the one tenant the ingest runs for.
ALTER TABLE deployments
    DROP CONSTRAINT deployments_workspace_id_fkey,
    DROP CONSTRAINT deployments_project_id_fkey;
ALTER TABLE pipeline_events
    DROP CONSTRAINT pipeline_events_workspace_id_fkey,
    DROP CONSTRAINT pipeline_events_project_id_fkey;
ALTER TABLE change_references
    DROP CONSTRAINT change_references_workspace_id_fkey;
