ALTER TABLE applications DROP COLUMN source_token;
ALTER TABLE applications DROP COLUMN source_provider;
