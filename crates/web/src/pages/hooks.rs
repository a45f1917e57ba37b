//! Hooks: a project's hooks with their last delivery (`GET /projects/{slug}/hooks`), one hook's
//! deliveries and attempts (`GET /hooks/{id}`), and for admins: a hook from a preset
//! (`POST /projects/{slug}/hooks`), a test delivery (`POST /hooks/{id}/test`), redelivery
//! (`POST /deliveries/{id}/redeliver`) and enabling or disabling (`POST /hooks/{id}/enabled`).

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use shiplog_app::hooks::presets::{PresetInput, PresetKind};
use shiplog_app::hooks::{Delivery, DeliveryStatus, HookInput, HookPage};
use shiplog_app::model::ProjectLookup;
use shiplog_domain::ids::{EnvironmentCode, ProjectSlug};

use crate::WebState;
use crate::layout::{self, Shell};
use serde::Deserialize;

use crate::session::{Page, PageError, Viewer, html_response, local_path, redirect};

/// How many deliveries a hook's page shows.
const DELIVERIES_SHOWN: u32 = 50;

fn delivery_status(status: DeliveryStatus) -> Markup {
    let icon = match status {
        DeliveryStatus::Pending => "◷",
        DeliveryStatus::Delivered => "✓",
        DeliveryStatus::Failed => "✕",
    };
    layout::badge(
        icon,
        &format!("delivery-{}", status.as_str()),
        status.as_str(),
    )
}

/// `GET /projects/{slug}/hooks`.
pub(crate) async fn list(
    state: web::Data<WebState>,
    viewer: Viewer,
    slug: web::Path<String>,
) -> Page {
    let project = ProjectSlug::parse(&slug).map_err(|_| PageError::Refused {
        status: StatusCode::NOT_FOUND,
        message: "There is no such project.".into(),
    })?;
    let hooks = state
        .app
        .list_hooks(
            &viewer.principal,
            ProjectLookup::Slug(project.clone()),
            None,
            None,
            HookPage::default(),
        )
        .await?
        .items;
    let mut last = Vec::with_capacity(hooks.len());
    for hook in &hooks {
        let deliveries = state
            .app
            .list_deliveries(&viewer.principal, &hook.id.to_string(), Some(1))
            .await?;
        last.push(deliveries.into_iter().next());
    }
    let title = format!("{project} · hooks");
    let body = html! {
        h1 { "Hooks of " a href=(format!("/projects/{project}")) { code { (project) } } }
        @if viewer.is_admin() { (preset_form(&project, &viewer)) }
        @if hooks.is_empty() {
            p.empty { "No hook yet. An admin creates one here from a preset, or with "
                code { (format!("POST /api/v1/projects/{project}/hooks")) } " for any request (see docs/hooks.md)." }
        } @else {
            div.scroll tabindex="0" {
                table {
                    thead { tr {
                        th scope="col" { "Hook" } th scope="col" { "Events" } th scope="col" { "Target" }
                        th scope="col" { "State" } th scope="col" { "Last delivery" }
                    } }
                    tbody {
                        @for (hook, delivery) in hooks.iter().zip(&last) {
                            tr {
                                th scope="row" { a href=(format!("/hooks/{}", hook.id)) { (hook.name) } }
                                td { (hook.events.join(", ")) }
                                td { code { (hook.method.as_str()) " " (hook.target_url) } }
                                td {
                                    @if hook.enabled { "enabled" } @else {
                                        "disabled"
                                        @if let Some(reason) = &hook.disabled_reason { br; span.muted { (reason) } }
                                    }
                                }
                                td {
                                    @match delivery {
                                        Some(d) => { (delivery_status(d.status)) " " (layout::time(d.updated_at)) },
                                        None => span.muted { "none yet" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}

/// `GET /hooks/{id}`.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Page {
    let hook = state.app.get_hook(&viewer.principal, &id).await?;
    let deliveries = state
        .app
        .list_deliveries(&viewer.principal, &id, Some(DELIVERIES_SHOWN))
        .await?;
    let title = format!("{} · hook", hook.name);
    let body = html! {
        h1 { "Hook " (hook.name) }
        p { a href=(format!("/projects/{}/hooks", hook.project)) { "All hooks of " (hook.project) } }
        dl.fields {
            dt { "Target" } dd { code { (hook.method.as_str()) " " (hook.target_url) } }
            dt { "Events" } dd { (hook.events.join(", ")) }
            @if viewer.is_admin() {
                dt { "Try it" } dd {
                    form.inline method="post" action=(format!("/hooks/{}/test", hook.id)) {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Send a test delivery" }
                    }
                    span.muted { " a " code { (shiplog_app::hooks::TEST_EVENT) } " delivery with sample values, sent now and listed below" }
                }
            }
            dt { "State" } dd {
                @if hook.enabled { "enabled" } @else { "disabled" }
                @if viewer.is_admin() {
                    form.inline method="post" action=(format!("/hooks/{}/enabled", hook.id)) {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="enabled" value=(if hook.enabled { "false" } else { "true" });
                        button type="submit" { @if hook.enabled { "Disable" } @else { "Enable" } }
                    }
                }
            }
            @if let Some(reason) = &hook.disabled_reason { dt { "Why disabled" } dd { (reason) } }
        }
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p.muted { "None yet: a delivery is made when a deployment this hook listens to changes." }
        }
        @for delivery in &deliveries {
            (delivery_section(delivery, &viewer, &format!("/hooks/{}", hook.id)))
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}

/// One delivery with its attempts, and the redeliver button for admins.
pub(crate) fn delivery_section(delivery: &Delivery, viewer: &Viewer, back: &str) -> Markup {
    html! {
        section.delivery id=(format!("delivery-{}", delivery.id)) {
            h3 { (delivery_status(delivery.status)) " " code { (delivery.event) } " " (layout::time(delivery.created_at)) }
            p {
                @if let Some(deployment) = &delivery.deployment {
                    "For " a href=(format!("/deployments/{deployment}")) { "deployment " (deployment) } ". "
                } @else { "A test send. " }
                @if let Some(at) = delivery.next_attempt_at { "Next attempt " (layout::time(at)) "." }
            }
            @if !delivery.attempts.is_empty() {
                ol.attempts {
                    @for attempt in &delivery.attempts {
                        li {
                            "Attempt " (attempt.number) " " (layout::time(attempt.at)) ": "
                            @match attempt.status_code { Some(code) => { "HTTP " (code) }, None => "no answer" }
                            " in " (attempt.duration_ms) " ms"
                            @if let Some(error) = &attempt.error { " — " (error) }
                        }
                    }
                }
            }
            @if viewer.is_admin() && delivery.deployment.is_some() {
                form method="post" action=(format!("/deliveries/{}/redeliver", delivery.id)) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="back" value=(back);
                    button type="submit" { "Redeliver" }
                }
            }
        }
    }
}

/// `POST /deliveries/{id}/redeliver` (admins): the delivery is sent again; back to its hook.
pub(crate) async fn redeliver(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<RedeliverForm>,
) -> Page {
    viewer.check_csrf(&form.csrf)?;
    let delivery = state.app.redeliver(&viewer.principal, &id).await?;
    let back = match form.back.as_deref().map(local_path) {
        Some(path) if path != "/" => path.to_owned(),
        _ => format!("/hooks/{}", delivery.hook),
    };
    Ok(redirect(&format!("{back}#delivery-{}", delivery.id)))
}

/// The form that creates a hook from a preset (`POST /projects/{slug}/hooks`).
fn preset_form(project: &ProjectSlug, viewer: &Viewer) -> Markup {
    html! {
        form.filters.create method="post" action=(format!("/projects/{project}/hooks")) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label { "Name" input name="name" required maxlength="200" placeholder="e.g. GitHub status"; }
            label { "Preset"
                select name="preset" {
                    option value="github" { "GitHub commit status" }
                    option value="gitlab" { "GitLab commit status" }
                    option value="bitbucket" { "Bitbucket build status" }
                    option value="slack" { "Slack message" }
                }
            }
            label { "Repository (optional)" input name="repository" placeholder="owner/name; default: the application's"; }
            label { "Token, or Slack's webhook URL" input type="password" name="token" autocomplete="off" required; }
            label { "Environment (optional)" input name="environment" placeholder="any"; }
            button type="submit" { "Create a hook" }
        }
    }
}

/// The preset form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct PresetForm {
    csrf: String,
    name: Option<String>,
    preset: String,
    repository: Option<String>,
    /// The provider token, or for Slack the incoming-webhook URL; stored as a secret.
    token: Option<String>,
    environment: Option<String>,
}

/// `POST /projects/{slug}/hooks` (admins): a hook from a preset; its signing secret shown once.
pub(crate) async fn create(
    state: web::Data<WebState>,
    viewer: Viewer,
    slug: web::Path<String>,
    form: web::Form<PresetForm>,
) -> Page {
    viewer.check_admin_form(&form.csrf)?;
    let project = ProjectSlug::parse(&slug).map_err(|_| PageError::Refused {
        status: StatusCode::NOT_FOUND,
        message: "There is no such project.".into(),
    })?;
    let kind = PresetKind::parse(&form.preset)?;
    let token = crate::pages::given(form.token.as_ref()).map(str::to_owned);
    let slack = kind == PresetKind::Slack;
    let created = state
        .app
        .create_hook(
            &viewer.principal,
            ProjectLookup::Slug(project),
            HookInput {
                name: crate::pages::given(form.name.as_ref())
                    .unwrap_or("")
                    .to_owned(),
                environment: crate::pages::filter(
                    "environment",
                    form.environment.as_ref(),
                    EnvironmentCode::parse,
                )?,
                preset: Some(PresetInput {
                    kind,
                    repository: crate::pages::given(form.repository.as_ref()).map(str::to_owned),
                    context: None,
                    access_token: if slack { None } else { token.clone() },
                    api_url: None,
                    webhook_url: if slack { token } else { None },
                }),
                ..HookInput::default()
            },
        )
        .await?;
    let hook = &created.hook;
    layout::shown_once(
        &viewer,
        "Hook created",
        (
            &format!("/hooks/{}", hook.id),
            "The hook's page: send it a test",
        ),
        html! {
            dt { "Hook" } dd { (hook.name) }
            dt { "Events" } dd { (hook.events.join(", ")) }
            dt { "Signing secret" } dd { (layout::secret("secret", &created.signing_secret)) }
            dt { "Verify" } dd { "Each delivery is signed with it (Standard Webhooks; docs/hooks.md)." }
        },
    )
}

/// `POST /hooks/{id}/test` (admins): one test delivery now; back to the hook, at it.
pub(crate) async fn test(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<crate::session::CsrfForm>,
) -> Page {
    viewer.check_admin_form(&form.csrf)?;
    let delivery = state.app.test_hook(&viewer.principal, &id).await?;
    Ok(redirect(&format!(
        "/hooks/{}#delivery-{}",
        delivery.hook, delivery.id
    )))
}

/// The enable/disable button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct EnabledForm {
    csrf: String,
    /// `true` or `false`.
    enabled: String,
}

/// `POST /hooks/{id}/enabled` (admins): enables or disables the hook; back to its page.
pub(crate) async fn set_enabled(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<EnabledForm>,
) -> Page {
    viewer.check_admin_form(&form.csrf)?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(crate::pages::refused("enabled", "send true or false")),
    };
    let hook = state
        .app
        .set_hook_enabled(&viewer.principal, &id, enabled)
        .await?;
    Ok(redirect(&format!("/hooks/{}", hook.id)))
}

/// The redeliver button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct RedeliverForm {
    csrf: String,
    /// The page the button was on, to return to.
    back: Option<String>,
}
