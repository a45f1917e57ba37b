//! Integrations: `POST/GET /api/v1/integrations`, `GET/DELETE /api/v1/integrations/{id}`,
//! `POST /api/v1/integrations/{id}/rotate-secret`, `GET /api/v1/integrations/{id}/deliveries`,
//! and `POST /api/v1/integrations/{id}/webhook`, where the provider posts.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use shiplog_app::integrations::{NewIntegration, Received};
use shiplog_domain::ids::ProjectSlug;

use super::{Reply, body, field};
use crate::HttpState;
use crate::access::Caller;
use crate::openapi::schemas::Items;
use crate::payload::RawBody;

/// A new integration.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewIntegration)]
pub(crate) struct IntegrationBody {
    /// `github`, `gitlab`, `jenkins`, `argocd`, `pagerduty` or `opsgenie`.
    provider: String,
    /// A label, 1 to 100 characters.
    name: String,
    /// The project its events go to (slug); a project-scoped key's own by default.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// The provider's settings (a JSON object); `{}` by default.
    #[schema(value_type = Option<Object>)]
    settings: Option<serde_json::Value>,
}

/// `POST /api/v1/integrations` (admin): the answer shows the secret once, and the URL to give
/// the provider.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations",
    request_body = IntegrationBody,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = shiplog_app::integrations::IntegrationSecret),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_integration(
    state: Data<HttpState>,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> Reply {
    let parsed: IntegrationBody = body(&bytes)?;
    let project = parsed
        .project
        .filter(|p| !p.trim().is_empty())
        .map(|p| field("project", ProjectSlug::parse(&p)))
        .transpose()?;
    let created = state
        .app
        .create_integration(
            &principal,
            NewIntegration {
                provider: parsed.provider,
                name: parsed.name,
                project,
                settings: parsed.settings,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// `GET /api/v1/integrations`: every integration the key may see, oldest first, without secrets.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    responses(
        (status = 200, description = "The integrations", body = Items<shiplog_app::integrations::IntegrationView>),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_integrations(state: Data<HttpState>, Caller(principal): Caller) -> Reply {
    let items = state.app.list_integrations(&principal).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// `GET /api/v1/integrations/{id}`: one integration, without its secret.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = String, Path, description = "The integration id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The integration", body = shiplog_app::integrations::IntegrationView),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_integration(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    Ok(HttpResponse::Ok().json(state.app.get_integration(&principal, &id).await?))
}

/// `DELETE /api/v1/integrations/{id}` (admin): the provider's deliveries are refused from now on.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = String, Path, description = "The integration id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 204, description = "Deleted, with its log"),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_integration(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    state.app.delete_integration(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A secret the provider chose.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ChosenSecret)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretBody {
    /// The provider's own signing secret (PagerDuty shows one and cannot be given one), 16 to
    /// 256 printable characters.
    secret: String,
}

/// `POST /api/v1/integrations/{id}/rotate-secret` (admin): a new secret, shown once; the old
/// one is still accepted for 24 hours. No body: shiplog makes the secret; `{"secret": …}`: the
/// provider's own.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/rotate-secret", tag = "integrations",
    params(("id" = String, Path, description = "The integration id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    request_body(content = Option<SecretBody>, description = "Optional: the provider's own secret"),
    responses(
        (status = 200, description = "The new secret, shown this once", body = shiplog_app::integrations::IntegrationSecret),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn rotate_integration_secret(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let chosen = if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
        None
    } else {
        Some(body::<SecretBody>(&bytes)?.secret)
    };
    Ok(HttpResponse::Ok().json(
        state
            .app
            .rotate_integration_secret(&principal, &id, chosen)
            .await?,
    ))
}

/// `GET /api/v1/integrations/{id}/deliveries`: the last 100 deliveries it received, newest
/// first, each with its verdict and why.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/deliveries", tag = "integrations",
    params(("id" = String, Path, description = "The integration id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "The received deliveries", body = Items<shiplog_app::integrations::ReceivedDelivery>),
        (status = 400, description = "A malformed parameter, named", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "An ingest key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_received(
    state: Data<HttpState>,
    Caller(principal): Caller,
    id: Path<String>,
) -> Reply {
    let items = state.app.integration_deliveries(&principal, &id).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// `POST /api/v1/integrations/{id}/webhook`: where the provider posts its own webhooks. No API
/// key: the delivery's signature, made with the integration's secret, is checked before
/// anything is read (GitHub: `X-Hub-Signature-256`; PagerDuty: `X-PagerDuty-Signature`;
/// GitLab, which cannot sign, sends the secret as `X-Gitlab-Token`; Jenkins, Argo CD and
/// Opsgenie as `X-Shiplog-Token` or the URL's `token`). Every delivery is logged with its
/// verdict.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/webhook", tag = "integrations",
    params(
        ("id" = String, Path, description = "The integration id", pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
        ("X-GitHub-Event" = Option<String>, Header, description = "GitHub: the event (ping, deployment, deployment_status, …)"),
        ("X-GitHub-Delivery" = Option<String>, Header, description = "GitHub: the delivery's id"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "GitHub: sha256=<hex HMAC-SHA256 of the body under the integration's secret>"),
        ("X-Gitlab-Event" = Option<String>, Header, description = "GitLab: the event (Deployment Hook, Pipeline Hook, …)"),
        ("X-Gitlab-Event-UUID" = Option<String>, Header, description = "GitLab: the delivery's id"),
        ("X-Gitlab-Token" = Option<String>, Header, description = "GitLab: the integration's secret, as GitLab's secret token"),
        ("X-PagerDuty-Signature" = Option<String>, Header, description = "PagerDuty: v1=<hex HMAC-SHA256 of the body under the integration's secret>, comma-separated when several"),
        ("X-Shiplog-Token" = Option<String>, Header, description = "Jenkins, Argo CD and Opsgenie: the integration's secret"),
        ("token" = Option<String>, Query, description = "Jenkins or Opsgenie, when a header cannot be set: the integration's secret in the URL"),
    ),
    request_body(content = Object, description = "The provider's own payload, as it sends it"),
    responses(
        (status = 200, description = "Accepted (recorded, or a ping) or ignored (an event shiplog does not read), with why", body = shiplog_app::integrations::ReceiveOutcome),
        (status = 400, description = "Not readable (the reason names what is wrong), or a provider not read yet", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "No signature, or one that does not match the integration's secret", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn receive(
    state: Data<HttpState>,
    request: HttpRequest,
    id: Path<String>,
    RawBody(bytes): RawBody,
) -> Reply {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let received = Received {
        event: header("x-github-event").or_else(|| header("x-gitlab-event")),
        delivery: header("x-github-delivery").or_else(|| header("x-gitlab-event-uuid")),
        signature: header("x-hub-signature-256").or_else(|| header("x-pagerduty-signature")),
        token: header("x-gitlab-token")
            .or_else(|| header("x-shiplog-token"))
            .or_else(|| query_token(request.query_string())),
        body: bytes.to_vec(),
    };
    let outcome = state
        .app
        .receive_integration(&id, received, &crate::providers::translate)
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// The `token` of a query string (Jenkins' Notification plugin can only put it in the URL).
fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "token" && !value.is_empty()).then(|| value.to_owned())
    })
}
