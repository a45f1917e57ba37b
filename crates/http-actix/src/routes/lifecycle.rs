//! Deletions and the audit log: `DELETE /api/v1/deployments/{id}`,
//! `/api/v1/applications/{id}`, `/api/v1/environments/{code}`, `/api/v1/projects/{slug}`,
//! `/api/v1/workspaces/{code}` (master key), and `GET /api/v1/audit`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, Query};
use serde::{Deserialize, Serialize};
use shiplog_app::audit::AuditRecord;
use shiplog_domain::ids::WorkspaceCode;
use shiplog_domain::timestamp::Timestamp;

use super::{Reply, field, optional};
use crate::HttpState;
use crate::access::{Admin, Caller, MasterKey};

/// `DELETE /api/v1/deployments/{id}` (admin): the deployment with its events, references and
/// deliveries; DORA figures over its day are recomputed.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "lifecycle",
    params(("id" = String, Path, description = "The deployment id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Deleted, with what belongs to it"),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such deployment (or not this key's to see)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_deployment(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    state.app.delete_deployment(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/applications/{id}` (admin): the application with its deployments,
/// assignments and hooks.
#[utoipa::path(delete, path = "/api/v1/applications/{id}", tag = "lifecycle",
    params(("id" = String, Path, description = "The application id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Deleted, with what belongs to it"),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such application (or not this key's to see)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_application(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    state.app.delete_application(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/environments/{code}` (admin of the whole workspace): the environment with
/// its deployments, assignments, hooks and packed DORA days.
#[utoipa::path(delete, path = "/api/v1/environments/{code}", tag = "lifecycle",
    params(("code" = String, Path, description = "The environment code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 204, description = "Deleted, with what belongs to it"),
        (status = 400, description = "A malformed code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such environment", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_environment(
    state: Data<HttpState>,
    Caller(principal): Caller,
    code: Path<String>,
) -> Reply {
    state.app.delete_environment(&principal, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/projects/{slug}` (admin): the project with its applications, deployments,
/// change requests, hooks, integrations, incidents and the keys limited to it.
#[utoipa::path(delete, path = "/api/v1/projects/{slug}", tag = "lifecycle",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 204, description = "Deleted, with what belongs to it"),
        (status = 400, description = "A malformed slug", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such project (or not this key's to see)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_project(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
) -> Reply {
    state.app.delete_project(&principal, &slug).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/workspaces/{code}` (master key): the workspace with everything of it; its
/// audit entries stay until retention removes them.
#[utoipa::path(delete, path = "/api/v1/workspaces/{code}", tag = "lifecycle",
    params(("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 204, description = "Deleted, with everything of it"),
        (status = 400, description = "A malformed code", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such workspace", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_workspace(
    state: Data<HttpState>,
    MasterKey(master): MasterKey,
    code: Path<String>,
) -> Reply {
    let code = field("code", WorkspaceCode::parse(&code))?;
    state.app.delete_workspace(&master, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Which entries of the audit log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// Master key: only this workspace's entries (its code); an admin key reads its own
    /// workspace's in any case. Blank counts as absent.
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    workspace: Option<String>,
    /// Entries older than this: the previous page's `next` (also in the `Link` header).
    #[param(pattern = "^$|^[1-9][0-9]{0,17}$")]
    before: Option<String>,
    /// Entries per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// Who made a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditActorView {
    /// `master`, `api_key`, `person` (signed in to the dashboard through the OpenID
    /// provider), `signing_key`, `integration` or `system`.
    kind: &'static str,
    /// The key's, person's or integration's id.
    id: Option<String>,
    /// The key's or person's name when they acted; `retention` for the system.
    name: Option<String>,
}

/// What a change was made to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditTargetView {
    /// `workspace`, `api_key`, `signing_key`, `hook`, `integration`, `session`,
    /// `deployment`, `application`, `environment`, `project` or `retention`.
    kind: &'static str,
    /// Its id (retention: the cut-off time).
    id: String,
    /// Its name, code or slug (retention: what was removed).
    name: Option<String>,
}

/// One entry of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    /// The entry's id.
    id: String,
    /// When (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// The workspace's code (kept after it is deleted); none for the instance's entries.
    workspace: Option<String>,
    actor: AuditActorView,
    /// `workspace.created`, `workspace.deleted`, `api_key.created`, `api_key.revoked`,
    /// `signing_key.created`, `signing_key.revoked`, `hook.created`, `hook.replaced`,
    /// `hook.enabled`, `hook.disabled`, `hook.deleted`, `integration.created`,
    /// `integration.secret_rotated`, `integration.deleted`, `session.ended`,
    /// `deployment.deleted`, `application.deleted`, `environment.deleted`, `project.deleted`,
    /// `retention.pruned`.
    action: &'static str,
    target: AuditTargetView,
    /// The client's address as the server saw it (the TCP peer: behind a proxy, the proxy's).
    address: Option<String>,
}

impl From<AuditRecord> for AuditEntryView {
    fn from(record: AuditRecord) -> Self {
        let entry = record.entry;
        Self {
            id: entry.id.to_string(),
            at: entry.at,
            workspace: entry.workspace_code,
            actor: AuditActorView {
                kind: entry.actor.kind(),
                id: entry.actor.id().map(str::to_owned),
                name: entry.actor.name().map(str::to_owned),
            },
            action: entry.action.as_str(),
            target: AuditTargetView {
                kind: entry.target.kind,
                id: entry.target.id,
                name: entry.target.name,
            },
            address: entry.address,
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPageView {
    /// Entries, newest first.
    items: Vec<AuditEntryView>,
    /// The `before` of the next (older) page; none on the last page.
    next: Option<String>,
}

/// `GET /api/v1/audit` (admin): who changed what, when, from which address, newest first.
/// An admin key reads its workspace's entries; the master key every workspace's and the
/// instance's (retention), or one workspace's with `workspace`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "lifecycle",
    params(AuditFilters),
    responses(
        (status = 200, description = "Entries, newest first; when older ones follow, `next` and a `Link` header name the next page", body = AuditPageView,
            headers(("link" = String, description = "`<…?before=N>; rel=\"next\"` when older entries follow"))),
        (status = 400, description = "A bad parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such workspace (or not this key's)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn audit_log(
    state: Data<HttpState>,
    Admin(admin): Admin,
    filters: Query<AuditFilters>,
) -> Reply {
    let filters = filters.into_inner();
    let workspace = optional("workspace", filters.workspace, WorkspaceCode::parse)?;
    let limit = optional("limit", filters.limit, |l| l.trim().parse::<u32>())?;
    let page = state
        .app
        .audit_log(
            admin.as_admin(),
            workspace.as_ref(),
            filters.before.as_deref().filter(|b| !b.trim().is_empty()),
            limit,
        )
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let mut link = format!("/api/v1/audit?before={next}");
        if let Some(limit) = limit {
            link.push_str(&format!("&limit={limit}"));
        }
        if let Some(workspace) = &workspace {
            link.push_str(&format!("&workspace={workspace}"));
        }
        response.insert_header(("link", format!("<{link}>; rel=\"next\"")));
    }
    Ok(response.json(AuditPageView {
        items: page.entries.into_iter().map(Into::into).collect(),
        next: page.next.map(|n| n.to_string()),
    }))
}
