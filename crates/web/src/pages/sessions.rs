//! Sessions and the audit log.
//!
//! `GET /sessions` lists the viewer's own live sessions (those of their key, or their
//! person's, wherever they signed in) and, for an admin, everyone's in the workspace, each with
//! an "End" button; `POST /sessions/end` ends one (CSRF-checked first; the use case checks that
//! it is the viewer's own or that the viewer is an admin, and records it in the audit log).
//! `GET /audit` shows the workspace's audit log to admins, newest first, a page at a time.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::admin::WorkspaceAdmin;
use shiplog_app::audit::Actor;
use shiplog_app::model::SessionSummary;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::given;
use crate::session::{Page, Viewer, encode, html_response, redirect};

/// The "End" button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct EndForm {
    csrf: String,
    session: String,
}

/// `GET /sessions`.
pub(crate) async fn list(state: web::Data<WebState>, viewer: Viewer) -> Page {
    let sessions = state.app.list_sessions(&viewer.principal).await?;
    let current = viewer.session_hash();
    let body = html! {
        h1 { "Sessions" }
        p.muted { "A session is a browser signed in to this dashboard. Ending one signs that browser out at its next request." }
        section aria-labelledby="own-heading" {
            h2 #own-heading { "Yours" }
            (table(&sessions.own, &current, &viewer))
        }
        @if let Some(everyone) = &sessions.everyone {
            section aria-labelledby="everyone-heading" {
                h2 #everyone-heading { "Everyone's in this workspace" }
                (table(everyone, &current, &viewer))
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Sessions", &viewer), body),
    ))
}

fn who(session: &SessionSummary) -> Markup {
    html! {
        @match &session.actor {
            Actor::Person { name, .. } => {
                (name)
                @if let Some(email) = &session.email { " " span.muted { "(" (email) ")" } }
            }
            Actor::ApiKey { name, .. } => { "key " code { (name) } }
            other => { (other.kind()) }
        }
    }
}

fn table(sessions: &[SessionSummary], current: &str, viewer: &Viewer) -> Markup {
    html! {
        @if sessions.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll tabindex="0" {
                table.sessions {
                    thead { tr {
                        th scope="col" { "Who" }
                        th scope="col" { "Role" }
                        th scope="col" { "Signed in" }
                        th scope="col" { "From" }
                        th scope="col" { "Ends" }
                        th scope="col" { span.visually-hidden { "End" } }
                    } }
                    tbody {
                        @for session in sessions {
                            tr {
                                td { (who(session)) }
                                td { (session.role.as_str()) }
                                td { (layout::time(session.created_at)) }
                                td { @match &session.address { Some(a) => code { (a) }, None => span.muted { "—" } } }
                                td { (layout::time(session.expires_at)) }
                                td {
                                    @if session.hash.as_str() == current {
                                        span.muted { "this browser" }
                                    } @else {
                                        form.inline method="post" action="/sessions/end" {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            input type="hidden" name="session" value=(session.hash.as_str());
                                            button type="submit" { "End" }
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

/// `POST /sessions/end`.
pub(crate) async fn end(
    state: web::Data<WebState>,
    viewer: Viewer,
    form: web::Form<EndForm>,
) -> Page {
    viewer.check_csrf(&form.csrf)?;
    state
        .app
        .end_session(&viewer.principal, &form.session)
        .await?;
    Ok(redirect("/sessions"))
}

/// `GET /audit`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<String>,
}

/// `GET /audit`: the workspace's audit log, for admins.
pub(crate) async fn audit(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<AuditQuery>,
) -> Page {
    viewer.require_admin()?;
    let page = state
        .app
        .audit_log(
            WorkspaceAdmin::Key(&viewer.principal),
            None,
            given(query.before.as_ref()),
            Some(50),
        )
        .await?;
    let body = html! {
        h1 { "Audit log" }
        p.muted { "Every administrative change in this workspace: who made it (a person, a key, an integration), what, and from which address." }
        @if page.entries.is_empty() {
            p.muted { "Nothing recorded yet." }
        } @else {
            div.scroll tabindex="0" {
                table.audit {
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "Who" }
                        th scope="col" { "What" }
                        th scope="col" { "To" }
                        th scope="col" { "From" }
                    } }
                    tbody {
                        @for record in &page.entries {
                            @let entry = &record.entry;
                            tr {
                                td { (layout::time(entry.at)) }
                                td {
                                    (entry.actor.kind().replace('_', " "))
                                    @if let Some(name) = entry.actor.name() { " " strong { (name) } }
                                }
                                td { code { (entry.action.as_str()) } }
                                td {
                                    (entry.target.kind.replace('_', " ")) " "
                                    @match &entry.target.name { Some(name) => strong { (name) }, None => code { (entry.target.id) } }
                                }
                                td { @match &entry.address { Some(a) => code { (a) }, None => span.muted { "—" } } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = page.next {
                p { a href=(format!("/audit?before={}", encode(&next.to_string()))) { "Older entries" } }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Audit log", &viewer), body),
    ))
}
