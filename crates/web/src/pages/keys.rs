//! API keys and signing keys of the viewer's workspace, for admin sessions: `GET /keys` lists
//! them (never a secret) with a revoke button each and the forms that create them;
//! `POST /keys` and `POST /signing-keys` create one and show its secret once, with a copy
//! button; `POST /keys/{id}/revoke` revokes one. Every form carries the session's CSRF token,
//! checked before anything changes; the use cases check the admin role again, as the API's do.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::admin::{CreateApiKey, KeySummary, WorkspaceAdmin};
use shiplog_domain::ids::ProjectSlug;
use shiplog_domain::key::Role;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::{filter, given, refused};
use crate::session::{Page, PageError, Viewer, html_response, redirect};

/// The create forms' fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    name: Option<String>,
    role: Option<String>,
    project: Option<String>,
    /// A UTC date (`YYYY-MM-DD`): the key stops working at its start.
    expires: Option<String>,
}

/// The revoke button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    csrf: String,
    /// `api` or `signing`.
    kind: String,
}

/// The workspace an admin session manages, after the form's CSRF token (when it is a form)
/// and the role are checked, in that order.
async fn administered(
    state: &WebState,
    viewer: &Viewer,
    csrf: Option<&str>,
) -> Result<shiplog_app::model::Workspace, PageError> {
    match csrf {
        Some(csrf) => viewer.check_admin_form(csrf)?,
        None => viewer.require_admin()?,
    }
    Ok(state.app.caller_workspace(&viewer.principal).await?)
}

/// `GET /keys`.
pub(crate) async fn list(state: web::Data<WebState>, viewer: Viewer) -> Page {
    let workspace = administered(&state, &viewer, None).await?;
    let (api, signing) = state
        .app
        .list_keys(WorkspaceAdmin::Key(&viewer.principal), &workspace.code)
        .await?;
    let projects = state.app.list_projects(&viewer.principal).await?;
    let body = html! {
        h1 { "Keys of " (workspace.name) }
        p.muted { "A key's secret is shown once, when it is created; shiplog keeps only a hash of an API key. Revoking a key ends it at once." }
        section #api-keys aria-labelledby="api-keys-heading" {
            h2 #api-keys-heading { "API keys" }
            (key_table(&api, "api", &viewer))
            (create_form("/keys", "Create an API key", &projects, &viewer))
        }
        section #signing-keys aria-labelledby="signing-keys-heading" {
            h2 #signing-keys-heading { "Signing keys" }
            p.muted { "For the signed Envtracker-compatible endpoints: a key id and a secret that signs each request." }
            (key_table(&signing, "signing", &viewer))
            (create_form("/signing-keys", "Create a signing key", &projects, &viewer))
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Keys", &viewer), body),
    ))
}

fn key_table(keys: &[KeySummary], kind: &str, viewer: &Viewer) -> Markup {
    html! {
        @if keys.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll tabindex="0" {
                table.keys {
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Role" }
                        th scope="col" { "Project" }
                        th scope="col" { @if kind == "api" { "Starts with" } @else { "Key id" } }
                        th scope="col" { "Created" }
                        th scope="col" { "Expires" }
                        th scope="col" { "Last used" }
                        th scope="col" { span.visually-hidden { "Revoke" } }
                    } }
                    tbody {
                        @for key in keys {
                            tr id=(format!("key-{}", key.id)) {
                                td { (key.name) }
                                td { (key.role.as_str()) }
                                td { @match &key.project { Some(p) => code { (p) }, None => span.muted { "all" } } }
                                td { code { @if let Some(hint) = &key.hint { (hint) "…" } @if let Some(id) = &key.key_id { (id.as_str()) } } }
                                td { (layout::time(key.created_at)) }
                                td { @match key.expires_at { Some(at) => (layout::time(at)), None => span.muted { "never" } } }
                                td { @match key.last_used_at { Some(at) => (layout::time(at)), None => span.muted { "never" } } }
                                td {
                                    @if kind == "api" && own_key(viewer) == Some(key.id.as_str()) {
                                        span.muted { "this session's key" }
                                    } @else {
                                    form.inline method="post" action=(format!("/keys/{}/revoke", key.id)) {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        input type="hidden" name="kind" value=(kind);
                                        button type="submit" aria-label=(format!("Revoke {}", key.name)) { "Revoke" }
                                    }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The id of the API key this session signed in with: the page offers no button that would
/// end the session it is used from (the API can still revoke it).
fn own_key(viewer: &Viewer) -> Option<&str> {
    match &viewer.principal.actor {
        shiplog_app::audit::Actor::ApiKey { id, .. } => Some(id.as_str()),
        _ => None,
    }
}

fn create_form(
    action: &str,
    title: &str,
    projects: &[shiplog_app::model::Project],
    viewer: &Viewer,
) -> Markup {
    html! {
        form.filters.create method="post" action=(action) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label { "Name" input name="name" required maxlength="200" placeholder="e.g. deploy pipeline"; }
            label { "Role"
                select name="role" {
                    option value="ingest" { "ingest: sends events" }
                    option value="read" { "read: reads and signs in" }
                    option value="admin" { "admin: everything" }
                }
            }
            label { "Project"
                select name="project" {
                    option value="" { "all projects" }
                    @for project in projects {
                        option value=(project.slug) { (project.name) }
                    }
                }
            }
            label { "Expires (UTC day, optional)" input type="date" name="expires"; }
            button type="submit" { (title) }
        }
    }
}

impl CreateForm {
    fn request(&self) -> Result<CreateApiKey, PageError> {
        let role = match given(self.role.as_ref()) {
            Some("read") => Role::Read,
            Some("ingest") => Role::Ingest,
            Some("admin") => Role::Admin,
            _ => return Err(refused("role", "choose read, ingest or admin")),
        };
        let expires_at = given(self.expires.as_ref())
            .map(|day| {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let date = time::Date::parse(day, &format)
                    .map_err(|_| refused("expires", "send a day as YYYY-MM-DD"))?;
                shiplog_domain::timestamp::Timestamp::from_offset(date.midnight().assume_utc())
                    .map_err(|e| refused("expires", e))
            })
            .transpose()?;
        Ok(CreateApiKey {
            name: given(self.name.as_ref()).unwrap_or("").to_owned(),
            role,
            project: filter("project", self.project.as_ref(), ProjectSlug::parse)?,
            expires_at,
        })
    }
}

/// `POST /keys`.
pub(crate) async fn create_api_key(
    state: web::Data<WebState>,
    viewer: Viewer,
    form: web::Form<CreateForm>,
) -> Page {
    let workspace = administered(&state, &viewer, Some(&form.csrf)).await?;
    let issued = state
        .app
        .create_api_key(
            WorkspaceAdmin::Key(&viewer.principal),
            &workspace.code,
            form.request()?,
        )
        .await?;
    layout::shown_once(
        &viewer,
        "API key created",
        ("/keys", "Back to the keys"),
        html! {
            dt { "Name" } dd { (issued.record.name) }
            dt { "Role" } dd { (issued.record.role.as_str()) }
            dt { "Key" } dd { (layout::secret("secret", issued.secret.reveal())) }
            dt { "Use it" } dd { code { "Authorization: Bearer <key>" } }
        },
    )
}

/// `POST /signing-keys`.
pub(crate) async fn create_signing_key(
    state: web::Data<WebState>,
    viewer: Viewer,
    form: web::Form<CreateForm>,
) -> Page {
    let workspace = administered(&state, &viewer, Some(&form.csrf)).await?;
    let record = state
        .app
        .create_signing_key(
            WorkspaceAdmin::Key(&viewer.principal),
            &workspace.code,
            form.request()?,
        )
        .await?;
    layout::shown_once(
        &viewer,
        "Signing key created",
        ("/keys", "Back to the keys"),
        html! {
            dt { "Name" } dd { (record.name) }
            dt { "Role" } dd { (record.role.as_str()) }
            dt { "Key id" } dd { code #key-id { (record.key_id.as_str()) } }
            dt { "Secret" } dd { (layout::secret("secret", record.secret.reveal())) }
            dt { "Use it" } dd { "Send the key id in " code { "X-Webhook-Key" } " and sign each request with the secret (docs/api.md)." }
        },
    )
}

/// `POST /keys/{id}/revoke`.
pub(crate) async fn revoke(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Page {
    let workspace = administered(&state, &viewer, Some(&form.csrf)).await?;
    let signing = match form.kind.as_str() {
        "api" => false,
        "signing" => true,
        _ => return Err(refused("kind", "send api or signing")),
    };
    state
        .app
        .revoke_key(
            WorkspaceAdmin::Key(&viewer.principal),
            &workspace.code,
            signing,
            &id,
        )
        .await?;
    Ok(redirect("/keys"))
}
