//! Every route, registered in one place.

use actix_web::{HttpRequest, HttpResponse, web};
use shiplog_app::auth::Principal;

use crate::errors::ApiError;
use crate::{HttpState, auth};

pub mod clienwork;
pub mod envtracker;
pub mod health;
pub mod hivel;
pub mod native;

/// What a handler answers.
pub type Reply = Result<HttpResponse, ApiError>;

/// Registers every route.
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(crate::metrics::serve))
        .route("/api/webhooks/ci", web::post().to(clienwork::ingest))
        .route("/api/hooks/v2/deployment", web::post().to(hivel::ingest))
        .route("/webhook/notify", web::put().to(envtracker::notify))
        .route(
            "/webhook/create-environment",
            web::put().to(envtracker::create_environment),
        )
        .route(
            "/webhook/assign-apps",
            web::put().to(envtracker::assign_apps),
        )
        .route(
            "/v1/company/{company}/project/{project}/applications/{application}/env/{environment}",
            web::put().to(envtracker::legacy_notify),
        )
        .service(
            web::scope("/api/v1")
                .route("/workspaces", web::post().to(native::create_workspace))
                .route(
                    "/workspaces/{code}/api-keys",
                    web::post().to(native::create_api_key),
                )
                .route(
                    "/workspaces/{code}/signing-keys",
                    web::post().to(native::create_signing_key),
                )
                .route("/projects", web::post().to(native::create_project))
                .route("/teams", web::post().to(native::create_team))
                .route("/deployments", web::get().to(native::list_deployments))
                .route("/deployments/{id}", web::get().to(native::get_deployment))
                .route(
                    "/projects/{slug}/environments",
                    web::get().to(native::environment_board),
                )
                .route(
                    "/projects/{slug}/references/{key:.+}",
                    web::get().to(native::get_reference),
                ),
        );
}

/// The caller, from whichever header carries its API key.
pub(crate) async fn caller(
    state: &HttpState,
    request: &HttpRequest,
) -> Result<Principal, ApiError> {
    Ok(state
        .app
        .authenticate(auth::presented_key(request).as_deref())
        .await?)
}

/// Parses a JSON body; a 400 names the field otherwise.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::json::parse(bytes).map_err(|message| ApiError::BadRequest {
        code: "invalid_body",
        message,
    })
}
