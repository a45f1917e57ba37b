//! Request logging: one span per request with an id, returned in `x-request-id`, one line per
//! response, and the request metrics. Headers (where keys and signatures travel) and bodies are never logged.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use futures_util::FutureExt;
use shiplog_app::error::{AppError, ErrorKind};
use tracing::Instrument;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The header that carries a request's id back to the client.
pub const REQUEST_ID: &str = "x-request-id";

/// A request's id, in its extensions while it is served.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: runs the request inside a `request` span and logs method, path, status and time.
pub async fn request_span(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = format!("r{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let method = request.method().to_string();
    let path = request.path().to_owned();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %path);
    request.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let mut response = next.call(request).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if let Some(state) = response
        .request()
        .app_data::<actix_web::web::Data<crate::HttpState>>()
    {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state
            .metrics
            .request(&method, &route, status, elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, micros, "answered");
        } else {
            tracing::info!(status, micros, "answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(response)
}

/// Middleware for each resource (applied by [`crate::routes::register`] after routing, since
/// the request may only be cloned once routed): a handler that panics is answered with a 500
/// that says nothing internal and names the request id; the panic is logged under that id.
pub async fn catch_panics(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let routed = request.request().clone();
    let outcome = AssertUnwindSafe(next.call(request)).catch_unwind().await;
    match outcome {
        Ok(answered) => Ok(answered?.map_into_left_body()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let id = routed
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            tracing::error!(request_id = %id, panic = %message, "handler panicked");
            let body = crate::openapi::schemas::ErrorBody::new(
                "internal_error",
                format!(
                    "internal error; the operator finds its cause in the logs under request id {id}"
                ),
            );
            Ok(
                ServiceResponse::new(routed, HttpResponse::InternalServerError().json(body))
                    .map_into_right_body(),
            )
        }
    }
}

/// Logs what a client is not told: the detail of a backend failure. Call it wherever an
/// `AppError` becomes a response; it only logs `Unavailable` errors, whose message to the client
/// is generic.
pub fn internal(error: &AppError) {
    if let AppError::ValueRefused(failure) = error {
        tracing::warn!(
            code = error.code().as_str(),
            detail = failure.detail(),
            "the database refused a value"
        );
    }
    if error.code().kind() == ErrorKind::Unavailable {
        let detail = match error {
            AppError::Unavailable(failure) => failure.detail(),
            _ => String::new(),
        };
        tracing::error!(code = error.code().as_str(), detail, "backend failure");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn backend_failures_are_logged_with_their_detail_and_nothing_else_is() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            internal(&AppError::Unavailable(
                shiplog_app::ports::BackendFailure::unavailable("disk I/O error on shiplog.db"),
            ));
            internal(&AppError::ReferenceNotFound("PR-1".into()));
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("disk I/O error on shiplog.db"), "{log}");
        assert!(log.contains("store_unavailable"), "{log}");
        assert!(
            !log.contains("PR-1"),
            "client errors are not logged as failures: {log}"
        );
    }
}
