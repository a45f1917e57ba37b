//! # shiplog-domain
//!
//! The pure core of shiplog: the vocabulary every CI provider speaks, translated into one
//! model, and the rules that model obeys.
//!
//! - [`status`]: provider status words (GitHub Actions, GitLab CI, Jenkins, CircleCI, Argo,
//!   Azure DevOps, Bitbucket, the compat APIs' generic words) → [`status::DeploymentStatus`].
//! - [`mod@reference`]: change requests named in commit messages (`#PR-123`, `fixes #42`, …).
//! - [`timestamp`]: RFC 3339 and epoch seconds/milliseconds → one UTC [`timestamp::Timestamp`].
//! - [`repo`]: every spelling of a Git remote → one [`repo::RepoIdentity`].
//! - [`changes`]: what a deployment changed since the previous one, and the forge's addresses.
//! - [`environment`]: environment kinds, explicit or guessed from a free name.
//! - [`event`]: pipeline events (`build|test|deploy` × `started|completed`).
//! - [`lifecycle`]: how out-of-order and repeated observations settle a deployment's status.
//! - [`ids`]: validated identifiers (slugs, codes, commit SHAs, idempotency keys).
//! - [`key`]: roles, API-key and signing-key formats, hashing.
//! - [`dora`]: the five DORA metrics over plain deployment and incident records.
//! - [`incident`]: incident sources and how their updates settle into one record.
//! - [`sighting`]: when a commit was first seen, folded event by event: lead time's start.
//! - [`hook`]: outgoing hook events, provider status words, the retry schedule, delivery ids.
//! - [`sso`]: which workspaces and role a person signing in through an OpenID provider gets,
//!   from their groups.
//! - [`text`]: what a one-line field may hold (no control or bidirectional formatting characters).
//!
//! ## What this crate must never do
//! It performs no I/O, spawns nothing, reads no clock and no randomness, and is not async.
//! It never depends on actix-web, diesel, tokio or any other I/O crate (`cargo xtask ci`
//! enforces this). Every parser is total: bad input is an `Err` naming the fix, never a panic.
//! Embedding services can rely on that to reuse these rules without a web framework or a
//! database driver.
//!
//! ## Examples
//! `cargo run -p shiplog-domain --example normalize` (provider status words),
//! `--example references` (commit messages) and `--example dora` (the five metrics over a
//! week of plain records). In short:
//!
//! ```
//! use shiplog_domain::status::{DeploymentStatus, Provider, normalize};
//! assert_eq!(normalize(Provider::parse("gitlab"), "canceled"), DeploymentStatus::Cancelled);
//! ```
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod changes;
pub mod dora;
pub mod environment;
pub mod event;
pub mod hook;
pub mod ids;
pub mod incident;
pub mod integration;
pub mod key;
pub mod lifecycle;
pub mod reference;
pub mod repo;
pub mod sighting;
pub mod sso;
pub mod status;
pub mod text;
pub mod timestamp;

/// The README's examples, run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
