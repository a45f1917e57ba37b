//! One module per page.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};

use crate::WebState;
use crate::session::PageError;

pub mod board;
pub mod deployments;
pub mod dora;
pub mod hooks;
pub mod integrations;
pub mod keys;
pub mod projects;
pub mod references;
pub mod sessions;
pub mod snippets;
pub(crate) mod trends;

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

/// A filter the page cannot use: a 400 that names it and says why.
pub(crate) fn refused(field: &str, message: impl std::fmt::Display) -> PageError {
    PageError::Refused {
        status: StatusCode::BAD_REQUEST,
        message: format!("The filter {field} cannot be used: {message}"),
    }
}

/// An optional filter, read as the API reads its parameters ([`shiplog_http::params`]): absent
/// or blank is `None`, else `parse` must accept it, and a refusal is a 400 page naming it.
pub(crate) fn filter<T, E: std::fmt::Display>(
    field: &str,
    value: Option<&String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, PageError> {
    shiplog_http::params::optional(field, given(value), parse)
        .map_err(|no| refused(&no.name, no.reason))
}

/// The project, environment and application a page is filtered to.
pub(crate) struct Scope {
    pub(crate) project: Option<ProjectSlug>,
    pub(crate) environment: Option<EnvironmentCode>,
    pub(crate) application: Option<ApplicationCode>,
}

/// Reads the scope filters every listing page shares.
pub(crate) fn scope(
    project: Option<&String>,
    environment: Option<&String>,
    application: Option<&String>,
) -> Result<Scope, PageError> {
    Ok(Scope {
        project: filter("project", project, ProjectSlug::parse)?,
        environment: filter("environment", environment, EnvironmentCode::parse)?,
        application: filter("application", application, ApplicationCode::parse)?,
    })
}
