-- An application's source-provider credential: what `application.source_provider.access_token`
-- renders in hook templates (Devopness's variable). Stored as sent, since deliveries send it;
-- never returned by the API or logged. `source_provider` names the provider (github, gitlab, …).
ALTER TABLE applications ADD COLUMN source_provider TEXT;
ALTER TABLE applications ADD COLUMN source_token TEXT;
