DROP TRIGGER dora_days_delete ON deployments;
DROP TRIGGER dora_days_update ON deployments;
DROP TRIGGER dora_days_insert ON deployments;
DROP FUNCTION dora_days_changed();
DROP TABLE dora_days;
DELETE FROM instance_settings WHERE name = 'dora_days_scanned';
