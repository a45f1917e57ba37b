//! # shiplog-http
//!
//! The HTTP adapter: actix-web routes that translate wire formats into `shiplog-app` use cases
//! and back.
//!
//! - [`errors`]: the one table from `ErrorKind` to HTTP status, and the error bodies.
//! - [`auth`]: API keys from `Authorization: Bearer`, `X-API-Key`, `X-Clienwork-API-Key` or
//!   `X-API-Token`; the master key.
//! - [`logging`], [`metrics`]: request spans and ids; Prometheus metrics at `/metrics`.
//! - [`routes`]: the route table ([`routes::ROUTES`]): `/healthz`, `/readyz`, the native
//!   `/api/v1` (workspaces, keys, projects, teams, deployments, the environments board,
//!   references), the Clienwork-compatible `POST /api/webhooks/ci`, the Hivel-compatible
//!   `POST /api/hooks/v2/deployment` and the signed Envtracker-compatible routes. Each route is
//!   guarded by [`logging::catch_panics`].
//! - [`providers`]: providers' own webhook payloads (GitHub) translated for an integration.
//! - [`openapi`]: the OpenAPI document at `/api/v1/openapi.json`, generated with utoipa.
//!
//! Bodies over 1 MiB are refused with 413; malformed JSON, wrong types and bad values get a 400
//! that names the field.
//!
//! ## What this crate must never do
//! It never talks to a database or a driver (only to `shiplog-app`), never holds business rules
//! beyond translating wire formats, never panics on client input, and never logs a secret (keys,
//! signatures, hook tokens).
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use actix_web::web;
use async_trait::async_trait;
use shiplog_app::App;

pub mod access;
pub mod auth;
pub mod csv_export;
pub mod errors;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod payload;
pub mod providers;
pub mod routes;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether the server can serve requests (`/readyz`): the database answers.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` with a reason for logs when not ready.
    async fn check(&self) -> Result<(), String>;
}

/// What every handler shares.
#[derive(Clone)]
pub struct HttpState {
    /// The use cases.
    pub app: App,
    /// The readiness probe.
    pub readiness: Arc<dyn Readiness>,
    /// The Prometheus metrics served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The bearer token `/metrics` requires, if one is set (`SHIPLOG_METRICS_TOKEN`), compared
    /// as a presented secret is ([`shiplog_domain::key::SigningSecret::matches`]).
    pub metrics_token: Option<shiplog_domain::key::SigningSecret>,
}

/// Registers every route and the body limit on an actix `App`. Wrap the `App` in
/// [`logging::request_span`] (with `actix_web::middleware::from_fn`) to log each request.
pub fn configure(state: HttpState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            // Query and path values the extractors cannot read get the JSON 400 too.
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                errors::ApiError::BadRequest {
                    code: "invalid_query",
                    message: format!("the query string cannot be read: {error}"),
                }
                .into()
            }))
            .app_data(web::PathConfig::default().error_handler(|error, _| {
                errors::ApiError::BadRequest {
                    code: "invalid_path",
                    message: format!("the path cannot be read: {error}"),
                }
                .into()
            }));
        routes::register(cfg);
    }
}
