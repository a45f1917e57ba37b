//! Integrations: each with its provider, project and webhook URL (`GET /integrations`), and the
//! deliveries it received with their verdicts (`GET /integrations/{id}`), so an operator can see
//! why a provider's webhook did nothing. Admin sessions create one (`POST /integrations`: its
//! URL and secret shown once) and rotate its secret (`POST /integrations/{id}/rotate`), each
//! form CSRF-checked first.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::integrations::{IntegrationSecret, NewIntegration};
use shiplog_domain::ids::ProjectSlug;
use shiplog_domain::integration::ROTATION_GRACE_HOURS;
use shiplog_domain::integration::{IntegrationProvider, Verdict};

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::{filter, given};
use crate::session::{Page, Viewer, html_response};

/// The create form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    provider: String,
    name: Option<String>,
    project: Option<String>,
}

/// The rotate form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct RotateForm {
    csrf: String,
    /// The provider's own secret, for a provider that chooses it (PagerDuty); blank: shiplog
    /// makes one.
    secret: Option<String>,
}

fn verdict(verdict: Verdict) -> Markup {
    let (icon, class) = match verdict {
        Verdict::Accepted => ("✓", "status-success"),
        Verdict::Ignored => ("–", "status-unknown"),
        Verdict::Rejected => ("✕", "status-failed"),
    };
    layout::badge(icon, class, verdict.as_str())
}

/// Beside a webhook URL when `SHIPLOG_PUBLIC_URL` is unset: the URL then names the address the
/// server listens on, which a provider outside this machine may not reach.
fn unreachable_warning(state: &WebState) -> Markup {
    html! {
        @if state.public_url.is_none() {
            p.problem #public-url-unset role="note" {
                "SHIPLOG_PUBLIC_URL is not set, so webhook URLs name the address this server listens on, which a provider may not reach. Set SHIPLOG_PUBLIC_URL to the address providers use (docs/operations.md)."
            }
        }
    }
}

/// `GET /integrations`.
pub(crate) async fn list(state: web::Data<WebState>, viewer: Viewer) -> Page {
    let integrations = state.app.list_integrations(&viewer.principal).await?;
    let projects = if viewer.is_admin() {
        state.app.list_projects(&viewer.principal).await?
    } else {
        Vec::new()
    };
    let body = html! {
        h1 { "Integrations" }
        p.muted { "Providers' own webhooks (GitHub, GitLab, Jenkins, Argo CD) received at a URL of their own. An admin key creates one with "
            code { "POST /api/v1/integrations" } "; see docs/ci/." }
        (unreachable_warning(&state))
        @if viewer.is_admin() {
            form.filters.create method="post" action="/integrations" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label { "Provider"
                    select name="provider" {
                        @for provider in IntegrationProvider::ALL {
                            option value=(provider.as_str()) { (provider.as_str()) }
                        }
                    }
                }
                label { "Name" input name="name" required maxlength="200" placeholder="e.g. acme/shop"; }
                label { "Project"
                    select name="project" {
                        option value="" { "any (by repository)" }
                        @for project in &projects { option value=(project.slug) { (project.name) } }
                    }
                }
                button type="submit" { "Create an integration" }
            }
        }
        @if integrations.is_empty() {
            p.empty { "No integration yet." }
        } @else {
            div.scroll tabindex="0" { table {
                thead { tr {
                    th scope="col" { "Integration" } th scope="col" { "Provider" }
                    th scope="col" { "Project" } th scope="col" { "Webhook URL" }
                } }
                tbody {
                    @for integration in &integrations {
                        tr {
                            th scope="row" { a href=(format!("/integrations/{}", integration.id)) { (integration.name) } }
                            td { (integration.provider.as_str()) }
                            td { @match &integration.project { Some(p) => code { (p) }, None => span.muted { "any (by repository)" } } }
                            td { code { (integration.webhook_url) } }
                        }
                    }
                }
            } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Integrations", &viewer), body),
    ))
}

/// `GET /integrations/{id}`.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Page {
    let integration = state.app.get_integration(&viewer.principal, &id).await?;
    let received = state
        .app
        .integration_deliveries(&viewer.principal, &id)
        .await?;
    let title = format!("{} · integration", integration.name);
    let body = html! {
        h1 { "Integration " (integration.name) }
        p { a href="/integrations" { "All integrations" } }
        dl.fields {
            dt { "Provider" } dd { (integration.provider.as_str()) }
            dt { "Webhook URL" } dd { code { (integration.webhook_url) } (unreachable_warning(&state)) }
            dt { "Created" } dd { (layout::time(integration.created_at)) }
            @if let Some(at) = integration.previous_secret_valid_until {
                dt { "Previous secret valid until" } dd { (layout::time(at)) }
            }
        }
        @if viewer.is_admin() {
            form.filters.rotate method="post" action=(format!("/integrations/{}/rotate", integration.id)) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label { "The provider's own secret (PagerDuty; else leave blank)" input name="secret" autocomplete="off"; }
                button type="submit" { "Rotate the secret" }
            }
            p.muted { "The previous secret keeps working for " (ROTATION_GRACE_HOURS) " hours, so the provider can be given the new one meanwhile." }
        }
        h2 { "Received (the last 100)" }
        @if received.is_empty() {
            p.muted { "Nothing received yet. Check the provider's webhook settings: URL, secret, events." }
        } @else {
            div.scroll tabindex="0" { table {
                thead { tr {
                    th scope="col" { "Received" } th scope="col" { "Event" }
                    th scope="col" { "Verdict" } th scope="col" { "Why" }
                } }
                tbody {
                    @for delivery in &received {
                        tr {
                            td { (layout::time(delivery.received_at)) }
                            td { code { (delivery.event.as_deref().unwrap_or("—")) } }
                            td { (verdict(delivery.verdict)) }
                            td { (delivery.reason) }
                        }
                    }
                }
            } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}

/// The page of a secret just made: the webhook URL and the secret, each with a copy button.
fn shown_once(state: &WebState, viewer: &Viewer, title: &str, made: &IntegrationSecret) -> Page {
    let integration = &made.integration;
    layout::shown_once(
        viewer,
        title,
        (
            &format!("/integrations/{}", integration.id),
            "The integration's page",
        ),
        html! {
            dt { "Integration" } dd { (integration.name) " (" (integration.provider.as_str()) ")" }
            dt { "Webhook URL" } dd { (layout::secret("webhook-url", &integration.webhook_url)) (unreachable_warning(state)) }
            dt { "Secret" } dd { (layout::secret("secret", &made.secret)) }
            dt { "Set up" } dd { "Give the provider both, as docs/ci/ shows for " (integration.provider.as_str()) "." }
        },
    )
}

/// `POST /integrations`.
pub(crate) async fn create(
    state: web::Data<WebState>,
    viewer: Viewer,
    form: web::Form<CreateForm>,
) -> Page {
    viewer.check_admin_form(&form.csrf)?;
    let made = state
        .app
        .create_integration(
            &viewer.principal,
            NewIntegration {
                provider: form.provider.clone(),
                name: given(form.name.as_ref()).unwrap_or("").to_owned(),
                project: filter("project", form.project.as_ref(), ProjectSlug::parse)?,
                settings: None,
            },
        )
        .await?;
    shown_once(&state, &viewer, "Integration created", &made)
}

/// `POST /integrations/{id}/rotate`.
pub(crate) async fn rotate(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Page {
    viewer.check_admin_form(&form.csrf)?;
    let made = state
        .app
        .rotate_integration_secret(
            &viewer.principal,
            &id,
            given(form.secret.as_ref()).map(str::to_owned),
        )
        .await?;
    shown_once(&state, &viewer, "Secret rotated", &made)
}
