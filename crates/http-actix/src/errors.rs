//! The one place where use-case errors become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shiplog_app::error::{AppError, ErrorKind};

/// The table: every error kind and its HTTP status.
pub const fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden | ErrorKind::LimitReached => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// How long a client should wait before retrying when the database is unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// A response of `status`: the one place every API's error answers start, so that each 503
/// carries `Retry-After` (the database will be back; the client should retry, not give up).
pub fn refusal(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        builder.insert_header(("retry-after", RETRY_AFTER_SECONDS.to_string()));
    }
    builder
}

/// Why a native request failed, in the native shape `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub enum ApiError {
    /// A use case refused it.
    App(AppError),
    /// The request itself is malformed (body or query), before any use case ran.
    BadRequest {
        /// A stable code (`invalid_body`, `invalid_field`).
        code: &'static str,
        /// The field and the fix.
        message: String,
    },
    /// A refusal with its own status (415 for a media type not read, 408 for a body that
    /// stopped arriving: its connection is closed).
    Status {
        /// The status.
        status: StatusCode,
        /// A stable code.
        code: &'static str,
        /// What to do.
        message: String,
    },
}

impl ApiError {
    /// A malformed field of a body or query.
    pub fn field(name: &str, error: impl std::fmt::Display) -> Self {
        Self::BadRequest {
            code: "invalid_field",
            message: format!("{name}: {error}"),
        }
    }

    /// A body in a media type the route does not read.
    pub fn unsupported_media_type(message: String) -> Self {
        Self::Status {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message,
        }
    }

    /// A body that stopped arriving.
    pub fn body_timeout(message: String) -> Self {
        Self::Status {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "body_timeout",
            message,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::App(error) => std::fmt::Display::fmt(error, f),
            Self::BadRequest { message, .. } | Self::Status { message, .. } => f.write_str(message),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        Self::App(error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::App(error) => status(error.code().kind()),
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Status { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::App(error) = self {
            crate::logging::internal(error);
        }
        let code = match self {
            Self::App(error) => error.code().as_str(),
            Self::BadRequest { code, .. } | Self::Status { code, .. } => code,
        };
        let mut builder = refusal(self.status_code());
        if self.status_code() == StatusCode::REQUEST_TIMEOUT {
            builder.force_close();
        }
        builder.json(crate::openapi::schemas::ErrorBody::new(
            code,
            self.to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use shiplog_app::error::ErrorCode;

    use super::*;

    #[test]
    fn every_code_has_a_client_or_availability_status() {
        for code in ErrorCode::ALL {
            let status = status(code.kind());
            assert!(
                status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{code:?}"
            );
        }
        assert_eq!(status(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(status(ErrorKind::Unauthenticated), StatusCode::UNAUTHORIZED);
    }
}
