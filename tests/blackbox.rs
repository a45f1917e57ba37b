//! The black-box suites: the whole server over HTTP, on SQLite and PostgreSQL, one module per
//! suite, compiled into this one test binary so the server is linked once. The shared helpers
//! (`spawn_app`, `on_both_backends!`, receivers) are the `shiplog_blackbox` library,
//! `tests/support.rs`.

mod access;
mod argocd;
mod browser;
mod changes;
mod clienwork;
mod dashboard;
mod dora;
mod envtracker;
mod export;
mod fuzz_ingest;
mod github;
mod gitlab;
mod hivel;
mod hook_worker;
mod hooks;
mod import;
mod incidents;
mod integrations;
mod jenkins;
mod keys;
mod lifecycle;
mod native;
mod sso;
