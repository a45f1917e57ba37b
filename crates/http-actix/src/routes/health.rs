//! Liveness and readiness.

use crate::openapi::schemas::Status;
use actix_web::{HttpResponse, web};

use crate::HttpState;

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = crate::openapi::schemas::Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// `GET /readyz`: the database answers too.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = crate::openapi::schemas::Status),
        (status = 503, description = "The database does not answer (the reason is logged)", body = crate::openapi::schemas::Status),
    ))]
pub async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(Status { status: "ready" }),
        // The reason may name hosts; it stays in the server's own output.
        Err(reason) => {
            tracing::warn!(reason, "not ready");
            crate::errors::refusal(actix_web::http::StatusCode::SERVICE_UNAVAILABLE).json(Status {
                status: "unavailable",
            })
        }
    }
}
