-- Nothing to change on SQLite. On PostgreSQL this version drops five foreign keys that every
-- concurrent ingest checked against the same workspace and project rows, each check a shared
-- row lock. SQLite checks a key with a read inside its single writer, without row locks.
SELECT 1;
