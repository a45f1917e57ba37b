-- A DORA query's finished deployments, packed per environment and UTC day (issue #12).
--
-- A row per (environment, day) that has finished deployments (status `success` or `failed`).
-- `records` holds that day's deployments as a DORA query reads them, every project's, packed
-- (`dora_days::Packed`) once the day is over; a query then reads one row per day instead of
-- one index entry per deployment, and reads the deployments themselves only for the days
-- without a packed row (the current day, days changed since they were packed, the window's
-- partial first and last days).
--
-- `state`: 0 stale (to pack), 1 about to be packed, 2 packed. The triggers below keep it true:
-- any change to a deployment a query would read (inserted, deleted, or one of the columns a
-- query reads changed) makes its day's row stale again (and its old day's, if it moved), and
-- bumps `version`, so a packing built from an older read never lands (see `dora_days::pack`).
-- The triggers leave alone a deployment of the current day or later (by the database's clock
-- when the row is written): such a day cannot be packed yet (packing waits until a day has been
-- over for an hour, by the same clock), and ingest, which nearly always writes such rows, pays
-- nothing for this table. The packer finds those days itself: each call looks through the days
-- that became packable since the day recorded in `instance_settings` ('dora_days_scanned').
-- `fence` (PostgreSQL's packer only): a transaction id; the day is packed once every
-- transaction before it has ended. `day` is `deployed_at` (microseconds since 1970) divided by a day's 86,400,000,000; a
-- deployment finished before 1970 is never packed.
CREATE TABLE dora_days (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    fence BIGINT,
    records BLOB,
    PRIMARY KEY (environment_id, day)
);
CREATE INDEX dora_days_to_pack ON dora_days (day) WHERE state <> 2;

INSERT INTO dora_days (environment_id, day)
SELECT DISTINCT environment_id, deployed_at / 86400000000 FROM deployments
WHERE status IN ('success', 'failed') AND deployed_at >= 0;
-- Every day before today is listed above; the packer looks through today and later.
INSERT INTO instance_settings (name, value, updated_at)
VALUES ('dora_days_scanned', CAST(unixepoch() / 86400 AS TEXT), 0);

CREATE TRIGGER dora_days_insert AFTER INSERT ON deployments
WHEN NEW.status IN ('success', 'failed') AND NEW.deployed_at >= 0
  AND NEW.deployed_at / 86400000000 < unixepoch() / 86400
BEGIN
    INSERT INTO dora_days (environment_id, day)
    VALUES (NEW.environment_id, NEW.deployed_at / 86400000000)
    ON CONFLICT DO NOTHING;
    UPDATE dora_days SET state = 0, records = NULL, version = version + 1
    WHERE environment_id = NEW.environment_id AND day = NEW.deployed_at / 86400000000
      AND state <> 0;
END;

CREATE TRIGGER dora_days_update AFTER UPDATE OF
    environment_id, application_id, project_id, status, deployed_at, commit_sha,
    commit_timestamp, commit_seen_at, started_at, rework
ON deployments
WHEN ((OLD.status IN ('success', 'failed') AND OLD.deployed_at / 86400000000 < unixepoch() / 86400)
    OR (NEW.status IN ('success', 'failed') AND NEW.deployed_at >= 0
      AND NEW.deployed_at / 86400000000 < unixepoch() / 86400))
  AND (OLD.environment_id IS NOT NEW.environment_id
    OR OLD.application_id IS NOT NEW.application_id
    OR OLD.project_id IS NOT NEW.project_id
    OR OLD.status IS NOT NEW.status
    OR OLD.deployed_at IS NOT NEW.deployed_at
    OR OLD.commit_sha IS NOT NEW.commit_sha
    OR OLD.commit_timestamp IS NOT NEW.commit_timestamp
    OR OLD.commit_seen_at IS NOT NEW.commit_seen_at
    OR OLD.started_at IS NOT NEW.started_at
    OR OLD.rework IS NOT NEW.rework)
BEGIN
    UPDATE dora_days SET state = 0, records = NULL, version = version + 1
    WHERE OLD.status IN ('success', 'failed')
      AND environment_id = OLD.environment_id AND day = OLD.deployed_at / 86400000000
      AND state <> 0;
    INSERT INTO dora_days (environment_id, day)
    SELECT NEW.environment_id, NEW.deployed_at / 86400000000
    WHERE NEW.status IN ('success', 'failed') AND NEW.deployed_at >= 0
    ON CONFLICT DO NOTHING;
    UPDATE dora_days SET state = 0, records = NULL, version = version + 1
    WHERE NEW.status IN ('success', 'failed')
      AND environment_id = NEW.environment_id AND day = NEW.deployed_at / 86400000000
      AND state <> 0;
END;

CREATE TRIGGER dora_days_delete AFTER DELETE ON deployments
WHEN OLD.status IN ('success', 'failed') AND OLD.deployed_at / 86400000000 < unixepoch() / 86400
BEGIN
    UPDATE dora_days SET state = 0, records = NULL, version = version + 1
    WHERE environment_id = OLD.environment_id AND day = OLD.deployed_at / 86400000000
      AND state <> 0;
END;
