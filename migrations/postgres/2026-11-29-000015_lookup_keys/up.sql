-- The ingest's lookup (`ingest::LOOKUP_SQL`) runs on a generic plan, made without the values
-- and from whatever statistics exist when it is made. It finds an event by its fingerprint and
-- a deployment by its idempotency key, each within one workspace: with the workspace first in
-- these unique keys, an index that also starts with `workspace_id` could tie with them on an
-- empty, unanalyzed table, and the plan then scanned the whole workspace. With the fingerprint
-- and the key first, these are the only indexes the lookup's conditions can use. The
-- constraints stay the same: one event per (workspace, fingerprint), one deployment per
-- (workspace, idempotency key).
ALTER TABLE pipeline_events
    DROP CONSTRAINT pipeline_events_workspace_id_fingerprint_key,
    ADD CONSTRAINT pipeline_events_fingerprint_workspace_id_key UNIQUE (fingerprint, workspace_id);
ALTER TABLE deployments
    DROP CONSTRAINT deployments_workspace_id_idempotency_key_key,
    ADD CONSTRAINT deployments_idempotency_key_workspace_id_key UNIQUE (idempotency_key, workspace_id);
