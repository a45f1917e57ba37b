-- Lead time's start, kept at ingest instead of sought per deployment at query time.
--
-- A deployment's lead time starts at its commit timestamp, else at the first pipeline event of
-- its commit other than its own. `commit_sightings` holds, per commit, the earliest event (and
-- the deployment it belongs to, if any) and the earliest event of anyone else: enough to give
-- every deployment of the commit its start (`shiplog_domain::sighting`). Each ingested event
-- with a commit folds itself in with one upsert; `deployments.commit_seen_at` holds the result
-- for each deployment, so a DORA window is one range scan with no seek per row.
CREATE TABLE commit_sightings (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    commit_sha TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    first_deployment_id TEXT,
    other_at BIGINT,
    PRIMARY KEY (workspace_id, commit_sha)
);
ALTER TABLE deployments ADD COLUMN commit_seen_at BIGINT;

-- Backfill from the events already recorded: the earliest event of each commit (of several at
-- that instant, the one of the smallest deployment id), then the earliest of anyone else.
INSERT INTO commit_sightings (workspace_id, commit_sha, first_at, first_deployment_id)
SELECT f.workspace_id, f.commit_sha, f.first_at,
  (SELECT MIN(p.deployment_id) FROM pipeline_events p
   WHERE p.workspace_id = f.workspace_id AND p.commit_sha = f.commit_sha
     AND p.occurred_at = f.first_at)
FROM (SELECT workspace_id, commit_sha, MIN(occurred_at) AS first_at FROM pipeline_events
      WHERE commit_sha IS NOT NULL GROUP BY workspace_id, commit_sha) AS f;
UPDATE commit_sightings SET other_at = (
  SELECT MIN(p.occurred_at) FROM pipeline_events p
  WHERE p.workspace_id = commit_sightings.workspace_id
    AND p.commit_sha = commit_sightings.commit_sha
    AND p.deployment_id IS DISTINCT FROM commit_sightings.first_deployment_id);
UPDATE deployments SET commit_seen_at = (
  SELECT CASE WHEN s.first_deployment_id = deployments.id THEN s.other_at ELSE s.first_at END
  FROM commit_sightings s
  WHERE s.workspace_id = deployments.workspace_id AND s.commit_sha = deployments.commit_sha)
WHERE commit_sha IS NOT NULL;

-- A DORA window stays an index-only range scan.
DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments
    (environment_id, deployed_at, status, application_id, id, workspace_id, commit_sha, commit_timestamp, project_id, commit_seen_at);
