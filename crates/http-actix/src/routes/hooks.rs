//! Outgoing hooks: the Devopness-compatible routes (`/pipelines/{pipeline_id}/hooks…`) and the
//! native ones under `/api/v1`. Both accept the same body; the native one may also name an
//! application and environment to narrow the hook, and a preset.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, Query};
use serde::Deserialize;
use shiplog_app::hooks::presets::{PresetInput, PresetKind};
use shiplog_app::hooks::{HookInput, HookPage, SecretText};
use shiplog_app::model::ProjectLookup;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};

use super::{Reply, body, field, optional};
use crate::HttpState;
use crate::access::Caller;
use crate::errors::ApiError;
use crate::openapi::schemas::Items;
use crate::payload::RawBody;

/// One request header: its value is a template and is never shown again.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct HeaderBody {
    name: String,
    #[serde(default)]
    value: String,
}

/// What the hook sends besides its URL.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct SettingsBody {
    #[serde(default)]
    request_headers: Vec<HeaderBody>,
    /// JSON; every string inside is a template. Absent: the standard envelope
    /// `{"type", "timestamp", "data"}`.
    #[schema(value_type = Option<Object>)]
    request_body: Option<serde_json::Value>,
}

/// When the hook fires.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct TriggerBody {
    /// `action.started|completed|failed`, `deployment.started|succeeded|failed|cancelled`.
    #[serde(default)]
    events: Vec<String>,
}

/// A preset that fills `target_url`, `settings` and (when empty) the events.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresetBody {
    /// `github`, `gitlab`, `bitbucket` or `slack`.
    kind: String,
    /// `owner/name`; default: the deployed application's repository.
    repository: Option<String>,
    /// The status context reused for every state; default `shiplog/{{ environment.code }}`.
    context: Option<String>,
    /// Stored as the secret `access_token`; never shown again.
    access_token: Option<String>,
    /// API base URL (GitHub Enterprise, self-managed GitLab).
    api_url: Option<String>,
    /// Slack: the incoming-webhook URL; stored as the secret `webhook_url`.
    webhook_url: Option<String>,
}

/// A hook, as the Devopness API and the native API take it.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewHook)]
pub(crate) struct HookBody {
    #[serde(default)]
    name: String,
    /// Devopness action type; default `deploy`.
    action_type: Option<String>,
    /// The URL template (required unless `preset` is sent).
    target_url: Option<String>,
    /// `POST` (default), `PUT` or `PATCH`.
    method: Option<String>,
    #[serde(default)]
    settings: SettingsBody,
    #[serde(default)]
    trigger_when: TriggerBody,
    /// Native only: limit to one application (code).
    application: Option<String>,
    /// Native only: limit to one environment (code).
    environment: Option<String>,
    /// Template secrets (`secrets.<name>`; `access_token` is also
    /// `application.source_provider.access_token`). Write-only; on replacement, absent keeps
    /// the stored ones.
    secrets: Option<BTreeMap<String, String>>,
    preset: Option<PresetBody>,
    /// Default true.
    enabled: Option<bool>,
}

fn input(bytes: &[u8]) -> Result<HookInput, ApiError> {
    let parsed: HookBody = body(bytes)?;
    let preset = parsed
        .preset
        .map(|p| {
            Ok::<_, ApiError>(PresetInput {
                kind: PresetKind::parse(&p.kind)?,
                repository: p.repository,
                context: p.context,
                access_token: p.access_token,
                api_url: p.api_url,
                webhook_url: p.webhook_url,
            })
        })
        .transpose()?;
    Ok(HookInput {
        name: parsed.name,
        application: optional("application", parsed.application, ApplicationCode::parse)?,
        environment: optional("environment", parsed.environment, EnvironmentCode::parse)?,
        events: parsed.trigger_when.events,
        action_type: parsed.action_type,
        method: parsed.method,
        target_url: parsed.target_url,
        headers: parsed
            .settings
            .request_headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        body: parsed.settings.request_body,
        secrets: parsed.secrets,
        preset,
        enabled: parsed.enabled,
    })
}

/// `POST /pipelines/{pipeline_id}/hooks/outgoing` (Devopness): a hook limited to the
/// application whose id is `pipeline_id`.
#[utoipa::path(post, path = "/pipelines/{pipeline_id}/hooks/outgoing", tag = "hooks",
    params(("pipeline_id" = String, Path, description = "The application id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body = HookBody,
    responses(
        (status = 201, description = "Created; the signing secret is shown this once", body = shiplog_app::hooks::CreatedHook),
        (status = 400, description = "A bad field or template, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such pipeline (application)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_pipeline_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    pipeline: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let created = state
        .app
        .create_pipeline_hook(&principal, &pipeline, input(&bytes)?)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// `GET /pipelines/{pipeline_id}/hooks` (Devopness): the hooks of one application.
#[utoipa::path(get, path = "/pipelines/{pipeline_id}/hooks", tag = "hooks",
    params(("pipeline_id" = String, Path, description = "The application id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The hooks, oldest first; when more follow, a `Link` header names the next page (`rel=\"next\"`)", body = Vec<shiplog_app::hooks::HookView>,
            headers(("link" = String, description = "`<…?after=ID>; rel=\"next\"` when more hooks follow"))),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key may not read", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such pipeline (application)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_pipeline_hooks(
    state: Data<HttpState>,
    Caller(principal): Caller,
    pipeline: Path<String>,
) -> Reply {
    let hooks = state.app.list_pipeline_hooks(&principal, &pipeline).await?;
    Ok(HttpResponse::Ok().json(hooks))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SourceProvider)]
pub(crate) struct SourceProviderBody {
    /// The provider: `github`, `gitlab`, `bitbucket`, …
    #[schema(pattern = "^[A-Za-z0-9-]{1,40}$")]
    provider: String,
    /// The token hooks send as `application.source_provider.access_token`. Write-only.
    #[schema(pattern = "^[^\\u0000-\\u0020\\u007f][^\\u0000-\\u001f\\u007f]{0,4095}$")]
    access_token: String,
}

/// `PUT /api/v1/applications/{id}/source-provider`: stores (or replaces) the application's
/// source-provider credential. It is never returned or logged.
#[utoipa::path(put, path = "/api/v1/applications/{id}/source-provider", tag = "hooks",
    params(("id" = String, Path, description = "The application id (the Devopness pipeline id)", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body = SourceProviderBody,
    responses(
        (status = 204, description = "Stored; hooks of this application now render it"),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such application visible to this key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn set_source_provider(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: SourceProviderBody = body(&bytes)?;
    state
        .app
        .set_source_provider(
            &principal,
            &id,
            &parsed.provider,
            SecretText::new(parsed.access_token),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn project(slug: &str) -> Result<ProjectLookup, ApiError> {
    field("slug", ProjectLookup::parse(slug))
}

/// `GET /api/v1/projects/{slug}/applications`: ids (Devopness pipeline ids), codes, names.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/applications", tag = "hooks",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    responses(
        (status = 200, description = "The applications, by code", body = Items<crate::openapi::schemas::Application>),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key may not read", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_applications(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
) -> Reply {
    let applications = state
        .app
        .list_applications(&principal, project(&slug)?)
        .await?;
    Ok(
        HttpResponse::Ok().json(Items::<crate::openapi::schemas::Application>::of(
            applications,
        )),
    )
}

/// `POST /api/v1/projects/{slug}/hooks`.
#[utoipa::path(post, path = "/api/v1/projects/{slug}/hooks", tag = "hooks",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    request_body = HookBody,
    responses(
        (status = 201, description = "Created; the signing secret is shown this once", body = shiplog_app::hooks::CreatedHook),
        (status = 400, description = "A bad field or template, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project, application or environment", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let created = state
        .app
        .create_hook(&principal, project(&slug)?, input(&bytes)?)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Query of the hook listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookFilters {
    /// Only hooks limited to this application (code).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    application: Option<String>,
    /// Only hooks limited to this environment (code).
    #[param(pattern = "^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    environment: Option<String>,
    /// Page size, 1 to 100 (the default, and the most hooks a project may have).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Start after this hook: the previous page's last id (the `Link` header's `rel="next"`
    /// names the next page).
    #[param(
        pattern = "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    after: Option<String>,
}

/// `GET /api/v1/projects/{slug}/hooks`.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/hooks", tag = "hooks",
    params(("slug" = String, Path, description = "The project slug", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"), HookFilters),
    responses(
        (status = 200, description = "The hooks, oldest first; when more follow, a `Link` header names the next page (`rel=\"next\"`)", body = Items<shiplog_app::hooks::HookView>,
            headers(("link" = String, description = "`<…?after=ID>; rel=\"next\"` when more hooks follow"))),
        (status = 400, description = "A bad filter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key may not read", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project, application or environment", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_hooks(
    state: Data<HttpState>,
    Caller(principal): Caller,
    slug: Path<String>,
    filters: Query<HookFilters>,
) -> Reply {
    let filters = filters.into_inner();
    let application = optional(
        "application",
        filters.application.clone(),
        ApplicationCode::parse,
    )?;
    let environment = optional(
        "environment",
        filters.environment.clone(),
        EnvironmentCode::parse,
    )?;
    let limit = optional("limit", filters.limit, |l| l.trim().parse::<u32>())?;
    let page = HookPage {
        limit,
        after: filters.after,
    };
    let list = state
        .app
        .list_hooks(&principal, project(&slug)?, application, environment, page)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(after) = &list.next_after {
        let mut next = format!("/api/v1/projects/{}/hooks?after={after}", slug.as_str());
        if let Some(limit) = limit {
            next.push_str(&format!("&limit={limit}"));
        }
        for (name, value) in [
            ("application", &filters.application),
            ("environment", &filters.environment),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                next.push_str(&format!("&{name}={}", value.trim()));
            }
        }
        response.insert_header(("link", format!("<{next}>; rel=\"next\"")));
    }
    Ok(response.json(Items { items: list.items }))
}

/// `GET /api/v1/hooks/{id}`.
#[utoipa::path(get, path = "/api/v1/hooks/{id}", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The hook (secrets and header values are never shown)", body = shiplog_app::hooks::HookView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key may not read", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.get_hook(&principal, &id).await?))
}

/// `PUT /api/v1/hooks/{id}`: replaces the definition (secrets left out are kept).
#[utoipa::path(put, path = "/api/v1/hooks/{id}", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body = HookBody,
    responses(
        (status = 200, description = "Replaced", body = shiplog_app::hooks::HookView),
        (status = 400, description = "A bad field or template, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook, application or environment", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replace_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let hook = state
        .app
        .replace_hook(&principal, &id, input(&bytes)?)
        .await?;
    Ok(HttpResponse::Ok().json(hook))
}

/// `DELETE /api/v1/hooks/{id}`: the hook and its deliveries.
#[utoipa::path(delete, path = "/api/v1/hooks/{id}", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    state.app.delete_hook(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/hooks/{id}/enable` (no body).
#[utoipa::path(post, path = "/api/v1/hooks/{id}/enable", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "Enabled; pending deliveries resume", body = shiplog_app::hooks::HookView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn enable_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.set_hook_enabled(&principal, &id, true).await?))
}

/// `POST /api/v1/hooks/{id}/disable` (no body).
#[utoipa::path(post, path = "/api/v1/hooks/{id}/disable", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "Disabled; nothing is sent until enabled", body = shiplog_app::hooks::HookView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn disable_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.set_hook_enabled(&principal, &id, false).await?))
}

/// `POST /api/v1/hooks/{id}/test` (no body): sends one delivery now with sample values.
#[utoipa::path(post, path = "/api/v1/hooks/{id}/test", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "Sent (or not): the delivery and its one attempt", body = shiplog_app::hooks::Delivery),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn test_hook(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.test_hook(&principal, &id).await?))
}

/// Query of the deliveries listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilters {
    /// How many, newest first: 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `GET /api/v1/hooks/{id}/deliveries`.
#[utoipa::path(get, path = "/api/v1/hooks/{id}/deliveries", tag = "hooks",
    params(("id" = String, Path, description = "The hook id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"), DeliveryFilters),
    responses(
        (status = 200, description = "Deliveries, newest first, with their attempts", body = Items<shiplog_app::hooks::Delivery>),
        (status = 400, description = "A bad limit", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "The key may not read", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such hook", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
    filters: Query<DeliveryFilters>,
) -> Reply {
    let limit = optional("limit", filters.into_inner().limit, |l| {
        l.trim().parse::<u32>()
    })?;
    let items = state.app.list_deliveries(&principal, &id, limit).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// `POST /api/v1/deliveries/{id}/redeliver` (no body): pending again, due now, fresh schedule.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/redeliver", tag = "hooks",
    params(("id" = String, Path, description = "The delivery id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 202, description = "Queued; the worker sends it shortly", body = shiplog_app::hooks::Delivery),
        (status = 400, description = "A test send cannot be redelivered", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such delivery", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn redeliver(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Accepted().json(state.app.redeliver(&principal, &id).await?))
}
