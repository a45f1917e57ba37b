//! The page shell and the pieces every page shares.

use maud::{DOCTYPE, Markup, html};
use shiplog_app::model::Deployment;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::assets::{ICON, SCRIPT, STYLESHEET};
use crate::session::Viewer;

/// What the shell needs to know about a page.
pub struct Shell<'a> {
    title: &'a str,
    viewer: Option<&'a Viewer>,
}

impl<'a> Shell<'a> {
    /// A page for someone not signed in (the sign-in form, errors).
    pub fn anonymous(title: &'a str) -> Self {
        Self {
            title,
            viewer: None,
        }
    }

    /// A page for a signed-in viewer: with the navigation and the sign-out button.
    pub fn signed_in(title: &'a str, viewer: &'a Viewer) -> Self {
        Self {
            title,
            viewer: Some(viewer),
        }
    }
}

/// A whole page.
pub fn page(shell: &Shell<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (shell.title) " · shiplog" }
                link rel="icon" type="image/svg+xml" href=(ICON.url());
                link rel="stylesheet" href=(STYLESHEET.url());
                script src=(SCRIPT.url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "shiplog" }
                    @if let Some(viewer) = shell.viewer {
                        nav aria-label="Main" {
                            a href="/" { "Overview" }
                            a href="/deployments" { "Deployments" }
                            a href="/dora" { "DORA" }
                            a href="/integrations" { "Integrations" }
                            @if viewer.is_admin() { a href="/keys" { "Keys" } a href="/audit" { "Audit" } }
                            a href="/sessions" { "Sessions" }
                        }
                        form.sign-out method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            @match &viewer.principal.actor {
                                shiplog_app::audit::Actor::Person { name, .. } => {
                                    span.role { span.who { (name) } " · " (viewer.principal.role.as_str()) }
                                }
                                _ => { span.role { (viewer.principal.role.as_str()) " key" } }
                            }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A time: UTC in the page (and on hover); the script shows it in the viewer's time zone.
pub fn time(at: Timestamp) -> Markup {
    let utc = at.as_offset_date_time();
    let day = format!(
        "{:04}-{:02}-{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day()
    );
    let text = format!("{day} {:02}:{:02} UTC", utc.hour(), utc.minute());
    let title = format!(
        "{day} {:02}:{:02}:{:02} UTC",
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    html! {
        time datetime=(at.to_rfc3339()) title=(title) { (text) }
    }
}

/// A duration in seconds, in the largest unit that keeps it readable.
pub fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        Some(s) => format!("{:.1} days", s / 86_400.0),
    }
}

/// The page that shows a new secret once (a 201: the thing was created), then links to
/// `next`.
pub fn shown_once(
    viewer: &Viewer,
    title: &str,
    (next, label): (&str, &str),
    rows: Markup,
) -> crate::session::Page {
    let body = html! {
        h1 { (title) }
        p.problem role="status" { "Copy the secret now: it is not shown again, and shiplog cannot show it later." }
        dl.fields.secret { (rows) }
        p { a href=(next) { (label) } }
    };
    Ok(crate::session::html_response(
        actix_web::http::StatusCode::CREATED,
        page(&Shell::signed_in(title, viewer), body),
    ))
}

/// A secret with its copy button (the script copies the element named by `data-copy`).
pub fn secret(id: &str, value: &str) -> Markup {
    html! {
        code #(id) { (value) } " "
        button.copy type="button" data-copy=(id) { "Copy" }
    }
}

/// A fraction in percent, one decimal; `—` without a value.
pub fn percent(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

/// A badge: an icon and the word, so that meaning never rests on colour alone; `class` colours
/// it (`status-success`, `status-failed`, …).
pub fn badge(icon: &str, class: &str, word: &str) -> Markup {
    html! {
        span class=(format!("status {class}")) {
            span.icon aria-hidden="true" { (icon) } " " (word)
        }
    }
}

/// A deployment status badge.
pub fn status(status: DeploymentStatus) -> Markup {
    let icon = match status {
        DeploymentStatus::Pending => "◷",
        DeploymentStatus::Running => "▶",
        DeploymentStatus::Success => "✓",
        DeploymentStatus::Failed => "✕",
        DeploymentStatus::Cancelled => "⊘",
        DeploymentStatus::Unknown => "?",
    };
    badge(
        icon,
        &format!("status-{}", status.as_str()),
        status.as_str(),
    )
}

/// What a deployment deployed, in a few characters: the short commit, else the image, else the
/// ref, else its id.
pub fn version(deployment: &Deployment) -> Markup {
    let fields = &deployment.fields;
    html! {
        @if let Some(sha) = &fields.commit_sha {
            code title=(sha.as_str()) { (sha.as_str().get(..7).unwrap_or(sha.as_str())) }
        } @else if let Some(image) = &fields.image {
            code { (image) }
        } @else if let Some(git_ref) = &fields.git_ref {
            code { (git_ref) }
        } @else {
            span.muted { "no version reported" }
        }
    }
}

/// The link to a deployment's page.
pub fn deployment_href(deployment: &Deployment) -> String {
    format!("/deployments/{}", deployment.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_a_sensible_unit() {
        assert_eq!(duration(None), "—");
        assert_eq!(duration(Some(42.0)), "42 s");
        assert_eq!(duration(Some(1800.0)), "30 min");
        assert_eq!(duration(Some(36_000.0)), "10.0 h");
        assert_eq!(duration(Some(864_000.0)), "10.0 days");
    }
}
