-- Nothing to do on SQLite: PostgreSQL drops the foreign keys from the ingest's tables to their
-- shared parent rows because its checks lock those rows (see the PostgreSQL migration of this
-- name); SQLite's checks take no row lock, so its keys stay.
SELECT 1;
