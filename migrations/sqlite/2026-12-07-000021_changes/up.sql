-- What a deployment changed (GET /api/v1/deployments/{id}, `changes`): the commits first seen
-- between the previous deployment's commit and its own are read by their first sighting.
-- An index on the sightings (one row per commit) rather than on the pipeline events (several
-- per commit), so that ingest pays for it only when a commit is first seen or seen earlier.
CREATE INDEX commit_sightings_by_time ON commit_sightings (workspace_id, first_at);
