//! # shiplog-http
//!
//! The HTTP adapter: actix-web routes for the four compatible push APIs (Clienwork, Envtracker,
//! Hivel, Devopness hooks), the native `/api/v1`, API-key and signature authentication, the
//! one table that maps every `shiplog-app` error code to an HTTP status, and the generated
//! OpenAPI document.
//!
//! Status: an empty shell until the HTTP issue lands.
//!
//! ## What this crate must never do
//! It never talks to a database or a driver (only to `shiplog-app` use cases), never holds
//! business rules beyond translating wire formats, never panics on client input, and never logs
//! a secret (keys, signatures, hook tokens).
