//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::HttpState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers too.
pub async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        // The reason may name hosts; it stays in the server's own output.
        Err(reason) => {
            tracing::warn!(reason, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
