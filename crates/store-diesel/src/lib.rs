//! # shiplog-store
//!
//! The storage adapter: implements every store port of `shiplog-app` with diesel, for embedded
//! SQLite (the default, `libsqlite3-sys` bundled) and PostgreSQL, chosen by the database URL.
//! It will hold the schema, the embedded migrations of `migrations/sqlite` and
//! `migrations/postgres`, the group-commit writer and the read pool.
//!
//! Status: an empty shell until the storage issue lands; the ports it will implement are
//! defined in `shiplog_app::ports`.
//!
//! ## What this crate must never do
//! It never decides business rules (it calls `shiplog-domain` for lifecycle merging), never
//! depends on actix-web or any HTTP crate, never returns before a write is durably committed,
//! and never runs a blocking diesel call on an async executor thread.
