//! One module per page.

use actix_web::HttpRequest;

use crate::WebState;

pub mod board;
pub mod deployments;
pub mod dora;
pub mod hooks;
pub mod projects;
pub mod references;
pub mod snippets;

/// This server's address as people reach it: `SHIPLOG_PUBLIC_URL` when set, else the scheme
/// and host the browser used.
pub(crate) fn base_url(request: &HttpRequest, state: &WebState) -> String {
    match &state.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = request.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// An optional form or query value: absent or blank is `None`.
pub(crate) fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}
