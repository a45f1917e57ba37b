-- The environments board: per application and environment, the last successful deployment
-- (by deployment time) and the newest pending or running one, each one index seek.
CREATE INDEX deployments_by_place ON deployments (application_id, environment_id, status, deployed_at);
