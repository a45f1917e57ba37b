//! The native API under `/api/v1`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, Query};
use serde::Deserialize;
use shiplog_app::admin::{AdminCredentials, CreateApiKey, CreateWorkspace};
use shiplog_app::deployments::ListDeployments;
use shiplog_app::metrics::DoraRequest;
use shiplog_app::model::ProjectLookup;
use shiplog_domain::dora::Interval;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug, TeamCode, WorkspaceCode};
use shiplog_domain::key::Role;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use super::{Reply, body, field, optional};
use crate::HttpState;
use crate::access::{Admin, Caller, MasterKey};
use crate::errors::ApiError;
use crate::openapi::schemas::{self, Items, KeyListed};
use crate::payload::RawBody;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewWorkspace)]
pub(crate) struct WorkspaceBody {
    /// Lowercase letters, digits and `-`; also the Envtracker `companyCode`.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    code: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    /// How many environments the workspace may hold (none: no limit).
    #[schema(minimum = 0, maximum = 1000000)]
    environment_limit: Option<u32>,
}

/// `POST /api/v1/workspaces` (master key) → `{id, code, name}`.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "admin",
    request_body = WorkspaceBody,
    responses(
        (status = 201, description = "Created", body = crate::openapi::schemas::Workspace),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The code is taken", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_workspace(
    state: Data<HttpState>,
    MasterKey(master): MasterKey,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: WorkspaceBody = body(&bytes)?;
    let code = field("code", WorkspaceCode::parse(&parsed.code))?;
    let workspace = state
        .app
        .create_workspace(
            &master,
            CreateWorkspace {
                code,
                name: parsed.name,
                environment_limit: parsed.environment_limit,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(schemas::Workspace::from(workspace)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewKey)]
pub(crate) struct ApiKeyBody {
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    /// `admin`, `ingest` or `read`.
    #[schema(pattern = "^(admin|ingest|read)$")]
    role: String,
    /// Limit the key to this project (slug); blank: the whole workspace.
    #[schema(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// When the key stops working (RFC 3339 or Unix seconds); none: never.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    expires_at: Option<Timestamp>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewSigningKey)]
pub(crate) struct SigningKeyBody {
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    /// `admin`, `ingest` or `read`; `ingest` when left out (a pipeline's key).
    #[schema(pattern = "^(admin|ingest|read)$")]
    role: Option<String>,
    /// Limit the key to this project (slug); blank: the whole workspace.
    #[schema(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// When the key stops working (RFC 3339 or Unix seconds); none: never.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    expires_at: Option<Timestamp>,
}

/// The workspace in the path and the key request, both API and signing keys.
fn key_request(
    code: &str,
    name: String,
    role: &str,
    project: Option<&str>,
    expires_at: Option<Timestamp>,
) -> Result<(WorkspaceCode, CreateApiKey), ApiError> {
    let workspace = field("code", WorkspaceCode::parse(code))?;
    let role = field("role", Role::parse(role))?;
    let project = project
        .filter(|p| !p.trim().is_empty())
        .map(|p| field("project", ProjectSlug::parse(p)))
        .transpose()?;
    Ok((
        workspace,
        CreateApiKey {
            name,
            role,
            project,
            expires_at,
        },
    ))
}

/// `POST /api/v1/workspaces/{code}/api-keys` (master key, or an admin key of the workspace)
/// → `{id, key, …}`. The key is shown this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{code}/api-keys", tag = "admin",
    params(("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    request_body = ApiKeyBody,
    responses(
        (status = 201, description = "Created; the key is shown this once", body = crate::openapi::schemas::IssuedApiKey),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace or project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_api_key(
    state: Data<HttpState>,
    Admin(caller): Admin,
    code: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: ApiKeyBody = body(&bytes)?;
    let (workspace, key) = key_request(
        &code,
        parsed.name,
        &parsed.role,
        parsed.project.as_deref(),
        parsed.expires_at,
    )?;
    let project = key.project.clone();
    let issued = state
        .app
        .create_api_key(caller.as_admin(), &workspace, key)
        .await?;
    Ok(HttpResponse::Created().json(schemas::IssuedApiKey::new(issued, project)))
}

/// `POST /api/v1/workspaces/{code}/signing-keys` (master key, or an admin key of the workspace)
/// → `{key_id, secret, …}` for the signed Envtracker-style endpoints. The secret is shown once.
/// `{"name": …}` alone makes an `ingest` key.
#[utoipa::path(post, path = "/api/v1/workspaces/{code}/signing-keys", tag = "admin",
    params(("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    request_body = SigningKeyBody,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = crate::openapi::schemas::IssuedSigningKey),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace or project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_signing_key(
    state: Data<HttpState>,
    Admin(caller): Admin,
    code: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: SigningKeyBody = body(&bytes)?;
    let (workspace, key) = key_request(
        &code,
        parsed.name,
        parsed.role.as_deref().unwrap_or(Role::Ingest.as_str()),
        parsed.project.as_deref(),
        parsed.expires_at,
    )?;
    let project = key.project.clone();
    let key = state
        .app
        .create_signing_key(caller.as_admin(), &workspace, key)
        .await?;
    Ok(HttpResponse::Created().json(schemas::IssuedSigningKey::new(key, project)))
}

/// `GET /api/v1/workspaces` (master key) → every workspace, by code.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "admin",
    responses(
        (status = 200, description = "Every workspace, by code", body = Items<schemas::Workspace>),
    ),
    security(("bearer" = [])))]
pub async fn list_workspaces(state: Data<HttpState>, MasterKey(master): MasterKey) -> Reply {
    let workspaces = state.app.list_workspaces(&master).await?;
    Ok(HttpResponse::Ok().json(Items::<schemas::Workspace>::of(workspaces)))
}

/// The keys of one kind of a workspace, for the listing routes.
async fn key_list(
    state: &HttpState,
    admin: &AdminCredentials,
    code: &str,
    signing: bool,
) -> Result<Items<KeyListed>, ApiError> {
    let workspace = field("code", WorkspaceCode::parse(code))?;
    let (api, signing_keys) = state.app.list_keys(admin.as_admin(), &workspace).await?;
    let keys = if signing { signing_keys } else { api };
    Ok(Items::of(keys))
}

/// `GET /api/v1/workspaces/{code}/api-keys` (master key, or an admin key of the workspace) →
/// its API keys, oldest first, never their secrets.
#[utoipa::path(get, path = "/api/v1/workspaces/{code}/api-keys", tag = "admin",
    params(("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 200, description = "Its API keys, oldest first; never a secret", body = Items<KeyListed>),
        (status = 400, description = "A bad workspace code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    state: Data<HttpState>,
    Admin(admin): Admin,
    code: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(key_list(&state, &admin, &code, false).await?))
}

/// `GET /api/v1/workspaces/{code}/signing-keys` → its signing keys, oldest first, never their
/// secrets.
#[utoipa::path(get, path = "/api/v1/workspaces/{code}/signing-keys", tag = "admin",
    params(("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 200, description = "Its signing keys, oldest first; never a secret", body = Items<KeyListed>),
        (status = 400, description = "A bad workspace code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_signing_keys(
    state: Data<HttpState>,
    Admin(admin): Admin,
    code: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(key_list(&state, &admin, &code, true).await?))
}

/// Revokes a key of one kind, for the two `DELETE` routes.
async fn revoke(
    state: &HttpState,
    admin: &AdminCredentials,
    (code, id): (String, String),
    signing: bool,
) -> Reply {
    let workspace = field("code", WorkspaceCode::parse(&code))?;
    state
        .app
        .revoke_key(admin.as_admin(), &workspace, signing, &id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/workspaces/{code}/api-keys/{id}`: revokes the key; this server refuses it from
/// the next request on, other servers sharing the database within 5 s.
#[utoipa::path(delete, path = "/api/v1/workspaces/{code}/api-keys/{id}", tag = "admin",
    params(
        ("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        ("id" = String, Path, description = "The key's id (from the listing)", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "A bad workspace code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace, or no such key in it", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    state: Data<HttpState>,
    Admin(admin): Admin,
    path: Path<(String, String)>,
) -> Reply {
    revoke(&state, &admin, path.into_inner(), false).await
}

/// `DELETE /api/v1/workspaces/{code}/signing-keys/{id}`: revokes the key; this server refuses it
/// from the next request on, other servers sharing the database within 5 s.
#[utoipa::path(delete, path = "/api/v1/workspaces/{code}/signing-keys/{id}", tag = "admin",
    params(
        ("code" = String, Path, description = "The workspace code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        ("id" = String, Path, description = "The key's record id (from the listing), not its key_id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "A bad workspace code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key of the whole workspace", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown workspace, or no such key in it", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_signing_key(
    state: Data<HttpState>,
    Admin(admin): Admin,
    path: Path<(String, String)>,
) -> Reply {
    revoke(&state, &admin, path.into_inner(), true).await
}

/// `GET /api/v1/projects` → the projects the key may see, by slug.
#[utoipa::path(get, path = "/api/v1/projects", tag = "read",
    responses(
        (status = 200, description = "The projects this key may see, by slug", body = Items<schemas::Project>),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_projects(state: Data<HttpState>, Caller(principal): Caller) -> Reply {
    let projects = state.app.list_projects(&principal).await?;
    Ok(HttpResponse::Ok().json(Items::<schemas::Project>::of(projects)))
}

/// `GET /api/v1/teams` → the workspace's teams, by code.
#[utoipa::path(get, path = "/api/v1/teams", tag = "read",
    responses(
        (status = 200, description = "The workspace's teams, by code", body = Items<schemas::Team>),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_teams(state: Data<HttpState>, Caller(principal): Caller) -> Reply {
    let teams = state.app.list_teams(&principal).await?;
    Ok(HttpResponse::Ok().json(Items::<schemas::Team>::of(teams)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewProject)]
pub(crate) struct ProjectBody {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    slug: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
}

/// `POST /api/v1/projects` → `{id, slug, name}`.
#[utoipa::path(post, path = "/api/v1/projects", tag = "admin",
    request_body = ProjectBody,
    responses(
        (status = 201, description = "Created", body = crate::openapi::schemas::Project),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The slug is taken", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_project(
    state: Data<HttpState>,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: ProjectBody = body(&bytes)?;
    let slug = field("slug", ProjectSlug::parse(&parsed.slug))?;
    let project = state
        .app
        .create_project(&principal, slug, &parsed.name)
        .await?;
    Ok(HttpResponse::Created().json(schemas::Project::from(project)))
}

/// A change to a project's settings; absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ProjectChange)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectPatch {
    /// The branch and ref patterns of the project's hotfixes (`*` matches any run of
    /// characters), at most 20 of 1 to 100 characters; `null` restores the defaults
    /// (`hotfix/*`, `hotfix-*`, `revert-*`). They decide the rework of deployments whose events
    /// arrive from then on.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<Vec<HotfixPattern>>, max_items = 20)]
    hotfix_patterns: Option<Option<Vec<String>>>,
}

/// One hotfix pattern in the OpenAPI document: 1 to 100 characters, not all blank, no control
/// characters (what `App::set_hotfix_patterns` accepts).
pub(crate) struct HotfixPattern;

impl utoipa::PartialSchema for HotfixPattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let printable = "[^\\u0000-\\u001f\\u007f-\\u009f]";
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(100))
            .pattern(Some(format!(
                "^{printable}*[^\\s\\u0000-\\u001f\\u007f-\\u009f]{printable}*$"
            )))
            .description(Some(
                "A branch or ref pattern: `*` matches any run of characters",
            ))
            .into()
    }
}

impl utoipa::ToSchema for HotfixPattern {}

/// `PATCH /api/v1/projects/{slug}` (admin): change a project's settings.
#[utoipa::path(patch, path = "/api/v1/projects/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    request_body = ProjectPatch,
    responses(
        (status = 200, description = "The project as changed", body = crate::openapi::schemas::Project),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key, or another project's", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_project(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let slug = field("slug", ProjectSlug::parse(&slug))?;
    let parsed: ProjectPatch = body(&bytes)?;
    let lookup = ProjectLookup::Slug(slug);
    let project = match parsed.hotfix_patterns {
        Some(patterns) => {
            state
                .app
                .set_hotfix_patterns(&principal, &lookup, patterns)
                .await?
        }
        None => state.app.project_settings(&principal, &lookup).await?,
    };
    Ok(HttpResponse::Ok().json(schemas::Project::from(project)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewTeam)]
pub(crate) struct TeamBody {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    code: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
}

/// `POST /api/v1/teams` → `{id, code, name}`.
#[utoipa::path(post, path = "/api/v1/teams", tag = "admin",
    request_body = TeamBody,
    responses(
        (status = 201, description = "Created", body = crate::openapi::schemas::Team),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The code is taken", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_team(
    state: Data<HttpState>,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: TeamBody = body(&bytes)?;
    let code = field("code", TeamCode::parse(&parsed.code))?;
    let team = state
        .app
        .create_team(&principal, code, &parsed.name)
        .await?;
    Ok(HttpResponse::Created().json(schemas::Team::from(team)))
}

/// Query of `GET /api/v1/deployments`; every value arrives as text and is parsed here.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeploymentFilters {
    /// Only this project (slug).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// Only this environment (code).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    environment: Option<String>,
    /// Only this application (code).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    application: Option<String>,
    /// Only this status.
    #[param(pattern = "^$|^(pending|running|success|failed|cancelled|unknown)$")]
    status: Option<String>,
    /// Deployed at or after this time (RFC 3339 or Unix seconds/milliseconds).
    since: Option<String>,
    /// Deployed before this time.
    until: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl DeploymentFilters {
    fn parse(self) -> Result<ListDeployments, ApiError> {
        Ok(ListDeployments {
            project: optional("project", self.project, ProjectSlug::parse)?,
            environment: optional("environment", self.environment, EnvironmentCode::parse)?,
            application: optional("application", self.application, ApplicationCode::parse)?,
            status: optional("status", self.status, DeploymentStatus::parse)?,
            since: optional("since", self.since, Timestamp::parse)?,
            until: optional("until", self.until, Timestamp::parse)?,
            limit: optional("limit", self.limit, |v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| "send a whole number from 1 to 200")
            })?,
            cursor: self.cursor,
        })
    }
}

/// `GET /api/v1/deployments` → `{items, next_cursor}`, newest first; with `Accept: text/csv`,
/// every deployment the filters match as CSV ([`crate::csv_export::deployments_download`]).
#[utoipa::path(get, path = "/api/v1/deployments", tag = "read",
    params(DeploymentFilters),
    responses(
        (status = 200, description = "A page, newest first; with `Accept: text/csv`, every deployment the filters match (from `cursor` on, at most `limit` rows if sent), newest first, as CSV with a header row",
            content(
                (crate::openapi::schemas::DeploymentPage = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A bad filter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_deployments(
    state: Data<HttpState>,
    Caller(principal): Caller,
    request: actix_web::HttpRequest,
    filters: Query<DeploymentFilters>,
) -> Reply {
    let list = filters.into_inner().parse()?;
    if crate::csv_export::wanted(&request) {
        return Ok(
            crate::csv_export::deployments_download(state.app.clone(), principal, list).await?,
        );
    }
    let page = state.app.list_deployments(&principal, list).await?;
    Ok(HttpResponse::Ok().json(schemas::DeploymentPage {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// `GET /api/v1/deployments/{id}`: the deployment with its duration, its lead time, its
/// commit's address and what it changed since the previous successful deployment of its
/// application to its environment (`changes`).
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "read",
    params(("id" = String, Path, description = "The deployment id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The deployment, with what it changed", body = shiplog_app::model::DeploymentCard),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such deployment visible to this key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_deployment(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    let card = state.app.deployment_card(&principal, &id).await?;
    Ok(HttpResponse::Ok().json(card))
}

/// `GET /api/v1/projects/{slug}/references/{key}`: the change request's status (`open`, or
/// `deployed` with where and when) and the deployments that carried it. Keys are written as
/// sent in commit messages, with `#` percent-encoded (`PR-123`, `%2371`, `org/repo%235`).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/references/{key}", tag = "read",
    params(
        ("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        ("key" = String, Path, description = "The reference, `#` percent-encoded"),
    ),
    responses(
        (status = 200, description = "The reference", body = shiplog_app::model::ReferenceView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project or reference", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_reference(
    state: Data<HttpState>,
    Caller(principal): Caller,
    path: Path<(String, String)>,
) -> Reply {
    let (slug, key) = path.into_inner();
    let project = field("slug", ProjectSlug::parse(&slug))?;
    let reference = state.app.get_reference(&principal, project, &key).await?;
    Ok(HttpResponse::Ok().json(reference))
}

/// `GET /api/v1/projects/{slug}/environments`: the environments board. Each environment in
/// position order with every application assigned or deployed to it, its current version (the
/// last successful deployment) and whether a newer deployment is pending or running.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/environments", tag = "read",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 200, description = "The board", body = crate::openapi::schemas::Board),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn environment_board(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
) -> Reply {
    let project = field("slug", ProjectSlug::parse(&slug))?;
    let environments = state
        .app
        .environment_board(&principal, ProjectLookup::Slug(project.clone()))
        .await?;
    Ok(HttpResponse::Ok().json(schemas::Board {
        project,
        environments,
    }))
}

/// Query of `GET /api/v1/metrics/dora`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoraParams {
    /// Only this project (slug); a project-scoped key always gets its own.
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// Only this environment (code) instead of every `production` environment.
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    environment: Option<String>,
    /// Only this application (code).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    application: Option<String>,
    /// The window's start (RFC 3339 or Unix seconds/milliseconds); default `to` minus 30 days.
    from: Option<String>,
    /// The window's end, excluded; default now.
    to: Option<String>,
    /// Also a series for charts: `day` or `week`.
    #[param(pattern = "^$|^(day|week)$")]
    interval: Option<String>,
    /// `true`: also `explanation`, the deployments and incidents behind the figures, each with
    /// how it was counted or why it was excluded.
    #[param(pattern = "^$|^(true|false)$")]
    explain: Option<String>,
    /// `true`: also `breakdown`, the window's figures per application (with a project) and per
    /// team.
    #[param(pattern = "^$|^(true|false)$")]
    breakdown: Option<String>,
    /// With `explain=true` and `Accept: text/csv`: which table of the explanation to answer,
    /// `deployments` (the default), `failures` or `incidents`.
    #[param(pattern = "^$|^(deployments|failures|incidents)$")]
    table: Option<String>,
    /// How long before an incident that names no cause its deployment is looked for, in hours
    /// (1 to 720); default 24.
    #[param(pattern = "^$|^[0-9]{1,9}$")]
    incident_link_hours: Option<String>,
}

/// `true` or `false`.
fn boolean(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not a boolean: send true or false")),
    }
}

impl DoraParams {
    fn parse(self) -> Result<DoraRequest, ApiError> {
        Ok(DoraRequest {
            project: optional("project", self.project, ProjectSlug::parse)?,
            environment: optional("environment", self.environment, EnvironmentCode::parse)?,
            application: optional("application", self.application, ApplicationCode::parse)?,
            from: optional("from", self.from, Timestamp::parse)?,
            to: optional("to", self.to, Timestamp::parse)?,
            interval: optional("interval", self.interval, |v| match v.trim() {
                "day" => Ok(Interval::Day),
                "week" => Ok(Interval::Week),
                other => Err(format!("{other:?} is not an interval: send day or week")),
            })?,
            explain: optional("explain", self.explain, boolean)?.unwrap_or(false),
            breakdown: optional("breakdown", self.breakdown, boolean)?.unwrap_or(false),
            link_hours: optional("incident_link_hours", self.incident_link_hours, |v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| "is not a whole number of hours: send 1 to 720")
            })?
            .unwrap_or(shiplog_app::metrics::DEFAULT_LINK_HOURS),
        })
    }
}

/// `GET /api/v1/metrics/dora`: deployment frequency, lead time for changes, change failure rate
/// and failed deployment recovery time, each with its value, band, sample and excluded counts,
/// computed from committed data at query time; `definitions` says how each was obtained.
#[utoipa::path(get, path = "/api/v1/metrics/dora", tag = "read",
    params(DoraParams),
    responses(
        (status = 200, description = "The metrics of the window (and the series when asked); with `Accept: text/csv`, a header row and one row per bucket of the series (`interval`), else the window's one row, or with `explain=true` one row per entry of the explanation's `table`",
            content(
                (shiplog_app::metrics::DoraView = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A bad parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn dora(
    state: Data<HttpState>,
    Caller(principal): Caller,
    request: actix_web::HttpRequest,
    params: Query<DoraParams>,
) -> Reply {
    let params = params.into_inner();
    let table = optional(
        "table",
        params.table.clone(),
        crate::csv_export::Table::parse,
    )?;
    let dora = params.parse()?;
    if table.is_some() && !dora.explain {
        return Err(ApiError::from(shiplog_app::error::AppError::invalid(
            "table",
            "names a table of the explanation: send it with explain=true",
        )));
    }
    let view = state.app.dora(&principal, dora).await?;
    if crate::csv_export::wanted(&request) {
        let (body, name) = match &view.explanation {
            Some(explanation) => crate::csv_export::explanation(explanation, table),
            None => (
                crate::csv_export::dora(&view.series.unwrap_or_else(|| vec![view.report.clone()])),
                "dora.csv",
            ),
        };
        return Ok(crate::csv_export::download(
            body.map_err(crate::csv_export::failed)?,
            name,
        ));
    }
    Ok(HttpResponse::Ok().json(view))
}
