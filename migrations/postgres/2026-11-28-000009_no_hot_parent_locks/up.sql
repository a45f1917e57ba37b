-- Every ingest inserts a deployment, a pipeline event and its change requests that point at the
-- same few rows: the workspace, the project, the application and the environment. A foreign
-- key makes PostgreSQL lock each of those parent rows (FOR KEY SHARE) in every inserting
-- transaction; with concurrent writers the lock on one row becomes an ever-growing MultiXact
-- that each new locker copies and each reader checks, and throughput fell as concurrency rose
-- (`cargo xtask bench http`, 16 connections: 590 ingests/s with these keys, 1631/s without;
-- docs/benchmarks.md). Those parents are never deleted, and the store only writes ids it read
-- or created in the same transaction, so these constraints go on PostgreSQL. SQLite keeps them:
-- its checks take no row lock. Keys to rows that are not shared (a deployment's own id) stay.
ALTER TABLE deployments
    DROP CONSTRAINT deployments_workspace_id_fkey,
    DROP CONSTRAINT deployments_project_id_fkey,
    DROP CONSTRAINT deployments_application_id_fkey,
    DROP CONSTRAINT deployments_environment_id_fkey;
ALTER TABLE pipeline_events
    DROP CONSTRAINT pipeline_events_workspace_id_fkey,
    DROP CONSTRAINT pipeline_events_project_id_fkey,
    DROP CONSTRAINT pipeline_events_application_id_fkey,
    DROP CONSTRAINT pipeline_events_environment_id_fkey;
ALTER TABLE change_references
    DROP CONSTRAINT change_references_project_id_fkey,
    DROP CONSTRAINT change_references_workspace_id_fkey,
    DROP CONSTRAINT change_references_deployed_environment_id_fkey;
