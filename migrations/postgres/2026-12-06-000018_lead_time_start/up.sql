-- A sighting after a deployment's finish (a later deployment of the same commit) no longer
-- dates its commit (shiplog_domain::sighting::lead_time_start). Packed DORA days hold commit
-- times worked out by the old rule: make them stale, so the server packs them again (the
-- query reads their deployments meanwhile; reports are exact throughout).
UPDATE dora_days SET state = 0, records = NULL, version = version + 1 WHERE state <> 0;
