-- Deployment rework rate (docs/dora.md#deployment-rework-rate).
--
-- `deployments.rework` holds what a deployment says of itself as rework, decided at ingest by
-- `shiplog_domain::dora::rework_signal` with its project's hotfix patterns: `marked` (its
-- sender said so), `hotfix_ref`, `revert`, or NULL. `projects.hotfix_patterns` holds a
-- project's own patterns, one per line; NULL means the defaults.
ALTER TABLE deployments ADD COLUMN rework TEXT;
ALTER TABLE projects ADD COLUMN hotfix_patterns TEXT;

-- Backfill with the default patterns (hotfix/*, hotfix-*, revert-*, matched against the branch
-- and against the ref without refs/heads/ or refs/tags/), then Git's revert message. LIKE, like
-- the domain's match, is case-sensitive.
UPDATE deployments SET rework = CASE
    WHEN branch LIKE 'hotfix/%' OR branch LIKE 'hotfix-%' OR branch LIKE 'revert-%'
      OR r.short_ref LIKE 'hotfix/%' OR r.short_ref LIKE 'hotfix-%' OR r.short_ref LIKE 'revert-%'
      THEN 'hotfix_ref'
    WHEN commit_message LIKE 'Revert "%' THEN 'revert'
  END
FROM (SELECT seq AS s, CASE
        WHEN git_ref LIKE 'refs/heads/%' THEN substr(git_ref, 12)
        WHEN git_ref LIKE 'refs/tags/%' THEN substr(git_ref, 11)
        ELSE git_ref END AS short_ref
      FROM deployments) AS r
WHERE r.s = deployments.seq;

-- A DORA window stays an index-only range scan: the start and the signal are covered too.
DROP INDEX deployments_by_environment_time;
CREATE INDEX deployments_by_environment_time ON deployments (environment_id, deployed_at)
    INCLUDE (status, application_id, id, workspace_id, commit_sha, commit_timestamp, project_id, commit_seen_at, started_at, rework);
