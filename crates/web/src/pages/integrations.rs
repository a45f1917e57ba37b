//! Integrations: each with its provider, project and webhook URL (`GET /integrations`), and the
//! deliveries it received with their verdicts (`GET /integrations/{id}`), so an operator can see
//! why a provider's webhook did nothing.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use shiplog_domain::integration::Verdict;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::session::{Page, Viewer, html_response};

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
    let body = html! {
        h1 { "Integrations" }
        p.muted { "Providers' own webhooks (GitHub, GitLab, Jenkins, Argo CD) received at a URL of their own. An admin key creates one with "
            code { "POST /api/v1/integrations" } "; see docs/ci/." }
        (unreachable_warning(&state))
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
