//! Request bodies, read within a size and a time limit.
//!
//! A client that announces a body and never sends it would otherwise hold its connection (and
//! a slot of the server) for as long as it likes. Handlers take [`RawBody`] instead of `Bytes`:
//! the body must arrive whole within [`BODY_TIMEOUT`] of the handler asking for it (which is
//! after authentication, so an unauthenticated client never has its body read at all), else the
//! answer is 408 and the connection is closed.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::openapi::schemas::ErrorBody;

/// How long a client has to send its whole body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body of at most [`crate::MAX_BODY_BYTES`], received within [`BODY_TIMEOUT`].
pub struct RawBody(pub Bytes);

impl FromRequest for RawBody {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = Bytes::from_request(request, payload);
        Box::pin(async move {
            match actix_web::rt::time::timeout(BODY_TIMEOUT, read).await {
                Ok(Ok(bytes)) => Ok(RawBody(bytes)),
                // Too large, or a broken body: the status actix chose, in the JSON shape.
                Ok(Err(error)) => {
                    let status = error.as_response_error().status_code();
                    Err(actix_web::error::InternalError::from_response(
                        "unreadable body",
                        HttpResponse::build(status).json(ErrorBody::new(
                            if status == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                                "body_too_large"
                            } else {
                                "invalid_body"
                            },
                            format!(
                                "the request body cannot be read ({error}): send at most {} bytes of JSON",
                                crate::MAX_BODY_BYTES
                            ),
                        )),
                    )
                    .into())
                }
                Err(_) => Err(actix_web::error::InternalError::from_response(
                    "body timeout",
                    HttpResponse::RequestTimeout()
                        .force_close()
                        .json(ErrorBody::new(
                            "body_timeout",
                            format!(
                                "the request body did not arrive within {} seconds: send it whole, right after the headers",
                                BODY_TIMEOUT.as_secs()
                            ),
                        )),
                )
                .into()),
            }
        })
    }
}
