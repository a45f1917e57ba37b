DROP TRIGGER dora_days_delete;
DROP TRIGGER dora_days_update;
DROP TRIGGER dora_days_insert;
DROP TABLE dora_days;
DELETE FROM instance_settings WHERE name = 'dora_days_scanned';
