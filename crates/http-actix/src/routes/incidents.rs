//! Incidents: `POST/GET /api/v1/incidents`, `GET/PATCH /api/v1/incidents/{id}`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, Query};
use serde::Deserialize;
use shiplog_app::ids::DeploymentId;
use shiplog_app::incidents::{
    IncidentBlame, IncidentChange, IncidentFilter, IncidentStatus, NewIncident,
};
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::timestamp::Timestamp;

use super::{Reply, body, optional};
use crate::HttpState;
use crate::access::Caller;
use crate::errors::ApiError;
use crate::payload::RawBody;

/// What an incident names as its cause: at most one of these is needed.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = IncidentBlameBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlameBody {
    /// A deployment id.
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    deployment: Option<String>,
    /// A commit SHA (7 to 64 hex digits).
    #[schema(pattern = "^[0-9a-fA-F]{7,64}$")]
    commit: Option<String>,
    /// A reference: `PREFIX-N` (`PR-123`, the prefix in capitals), `#N` or `N`, or
    /// `owner/repo#N`; N has at most 18 digits.
    #[schema(
        pattern = "^[ \\t\\n\\r]*(#?[0-9]{1,18}|#?[A-Z][A-Z0-9]{0,31}-[0-9]{1,18}|[A-Za-z0-9-]{1,64}/[A-Za-z0-9._-]{1,100}#[0-9]{1,18})?[ \\t\\n\\r]*$"
    )]
    reference: Option<String>,
}

impl BlameBody {
    fn parse(self) -> Result<IncidentBlame, ApiError> {
        Ok(IncidentBlame {
            deployment: optional("blamed.deployment", self.deployment, |v| {
                DeploymentId::parse(v)
                    .ok_or("is not a deployment id: send the id GET /api/v1/deployments shows")
            })?,
            commit: optional("blamed.commit", self.commit, CommitSha::parse)?,
            reference: optional("blamed.reference", self.reference, ReferenceKey::parse)?,
        })
    }
}

/// A new incident.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewIncident)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentBody {
    /// The project (slug); a project-scoped key's own by default.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// The application it is about (code); none: the whole project.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    application: Option<String>,
    /// The environment it is in (code); none: every production environment.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    environment: Option<String>,
    /// What broke, 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    title: String,
    /// A severity or priority word (`P1`, `high`), up to 40 characters.
    severity: Option<String>,
    /// Where your tool shows it (http or https).
    url: Option<String>,
    /// Your tool's id for it: the same id again updates the same incident. Without it,
    /// `opened_at` is required and the place, title and opening identify the incident.
    external_id: Option<String>,
    /// When it opened (RFC 3339 or Unix seconds/milliseconds); default now.
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    opened_at: Option<Timestamp>,
    /// When it was resolved, if it is.
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    resolved_at: Option<Timestamp>,
    /// What caused it; none: DORA links it to the last successful deployment of its place within
    /// `incident_link_hours` before it opened.
    #[serde(default)]
    blamed: Option<BlameBody>,
}

/// `POST /api/v1/incidents` (ingest or admin): opens an incident, or updates the one with the
/// same `external_id`.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents",
    request_body = IncidentBody,
    responses(
        (status = 201, description = "A new incident", body = shiplog_app::incidents::IncidentView),
        (status = 200, description = "The incident with this external_id, updated", body = shiplog_app::incidents::IncidentView),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "A read key, or another project's key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_incident(
    state: Data<HttpState>,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: IncidentBody = body(&bytes)?;
    let request = NewIncident {
        project: optional("project", parsed.project, ProjectSlug::parse)?,
        application: optional("application", parsed.application, ApplicationCode::parse)?,
        environment: optional("environment", parsed.environment, EnvironmentCode::parse)?,
        title: parsed.title,
        severity: parsed.severity,
        url: parsed.url.filter(|u| !u.trim().is_empty()),
        external_id: parsed.external_id,
        opened_at: parsed.opened_at,
        resolved_at: parsed.resolved_at,
        blame: parsed.blamed.unwrap_or_default().parse()?,
    };
    let (incident, created) = state.app.report_incident(&principal, request).await?;
    Ok(if created {
        HttpResponse::Created().json(incident)
    } else {
        HttpResponse::Ok().json(incident)
    })
}

/// A change to an incident; absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = IncidentChange)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchBody {
    /// A new title, 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    title: Option<String>,
    /// A new severity; `null` clears it.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>)]
    severity: Option<Option<String>>,
    /// `resolved` (at `resolved_at`, default now) or `open` (reopens it).
    #[schema(pattern = "^(open|resolved)$")]
    status: Option<String>,
    /// When it was resolved; sending it resolves the incident.
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    resolved_at: Option<Timestamp>,
    /// A new cause, replacing the old one; `{}` clears it.
    blamed: Option<BlameBody>,
}

/// `PATCH /api/v1/incidents/{id}` (ingest or admin): resolve, reopen, retitle, blame.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "The incident id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The incident as changed", body = shiplog_app::incidents::IncidentView),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "A read key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such incident", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_incident(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: PatchBody = body(&bytes)?;
    let change = IncidentChange {
        title: parsed.title,
        severity: parsed.severity,
        status: optional("status", parsed.status, status)?,
        resolved_at: parsed.resolved_at,
        blame: parsed.blamed.map(BlameBody::parse).transpose()?,
    };
    Ok(HttpResponse::Ok().json(state.app.update_incident(&principal, &id, change).await?))
}

/// `open` or `resolved`.
fn status(value: &str) -> Result<IncidentStatus, String> {
    match value.trim() {
        "open" => Ok(IncidentStatus::Open),
        "resolved" => Ok(IncidentStatus::Resolved),
        other => Err(format!("{other:?} is not a status: send open or resolved")),
    }
}

/// `GET /api/v1/incidents/{id}`.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "The incident id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The incident", body = shiplog_app::incidents::IncidentView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such incident", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_incident(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.incident(&principal, &id).await?))
}

/// Query of `GET /api/v1/incidents`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentParams {
    /// Only this project (slug).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// Only `open` or only `resolved` ones.
    #[param(pattern = "^$|^(open|resolved)$")]
    status: Option<String>,
    /// Page size, 1 to 200; default 50.
    #[param(pattern = "^$|^[0-9]{1,9}$")]
    limit: Option<String>,
    /// A page's `next_cursor`.
    #[param(
        pattern = "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    cursor: Option<String>,
}

/// `GET /api/v1/incidents`: newest opening first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents",
    params(IncidentParams),
    responses(
        (status = 200, description = "A page of incidents", body = shiplog_app::incidents::IncidentPage),
        (status = 400, description = "A bad parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_incidents(
    state: Data<HttpState>,
    Caller(principal): Caller,
    params: Query<IncidentParams>,
) -> Reply {
    let params = params.into_inner();
    let filter = IncidentFilter {
        project: optional("project", params.project, ProjectSlug::parse)?,
        status: optional("status", params.status, status)?,
        limit: optional("limit", params.limit, |v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| "is not a number: send 1 to 200")
        })?,
        cursor: params.cursor.filter(|c| !c.trim().is_empty()),
    };
    Ok(HttpResponse::Ok().json(state.app.incidents(&principal, filter).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_tells_null_from_absent() {
        let cleared: PatchBody = serde_json::from_str(r#"{"severity": null}"#).unwrap();
        assert_eq!(cleared.severity, Some(None));
        let absent: PatchBody = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.severity, None);
        assert!(serde_json::from_str::<PatchBody>(r#"{"colour": "red"}"#).is_err());
    }
}
