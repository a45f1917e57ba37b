//! `GET /projects/{slug}`: the environments board, environments as columns in position order,
//! applications as rows; a new project's empty state shows CI snippets instead.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use maud::{Markup, html};
use shiplog_app::model::{BoardApplication, BoardEnvironment, ProjectLookup};
use shiplog_domain::ids::{ApplicationCode, ProjectSlug};

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::{base_url, snippets};
use crate::session::{Page, PageError, Viewer, html_response};

/// `GET /projects/{slug}`.
pub(crate) async fn show(
    request: HttpRequest,
    state: web::Data<WebState>,
    viewer: Viewer,
    slug: web::Path<String>,
) -> Page {
    let slug = ProjectSlug::parse(&slug).map_err(|_| PageError::Refused {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "There is no project {:?}.",
            slug.chars().take(80).collect::<String>()
        ),
    })?;
    let board = state
        .app
        .environment_board(&viewer.principal, ProjectLookup::Slug(slug.clone()))
        .await?;
    let title = format!("{slug} · environments");
    let body = html! {
        h1 { "Environments of " code { (slug) } }
        p.links {
            a href=(format!("/deployments?project={slug}")) { "Deployments" }
            a href=(format!("/dora?project={slug}")) { "DORA" }
            a href=(format!("/projects/{slug}/hooks")) { "Hooks" }
        }
        form.inline method="get" action=(format!("/projects/{slug}/references")) {
            label for="reference" { "Where is a change request?" }
            input #reference name="key" placeholder="PR-123" required;
            button type="submit" { "Find" }
        }
        @if board.is_empty() {
            (empty_state(&base_url(&request, &state), slug.as_str()))
        } @else {
            (table(&board))
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}

fn table(board: &[BoardEnvironment]) -> Markup {
    let applications: BTreeSet<&ApplicationCode> = board
        .iter()
        .flat_map(|environment| environment.applications.iter().map(|a| &a.application))
        .collect();
    html! {
        div.scroll tabindex="0" {
            table.board {
                thead {
                    tr {
                        th scope="col" { "Application" }
                        @for environment in board {
                            th scope="col" {
                                (environment.name)
                                br;
                                span.muted { code { (environment.code) } " · " (environment.kind.as_str()) }
                            }
                        }
                    }
                }
                tbody {
                    @for application in &applications {
                        tr {
                            th scope="row" { (application) }
                            @for environment in board {
                                td { (cell(environment.applications.iter().find(|a| &&a.application == application))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cell(entry: Option<&BoardApplication>) -> Markup {
    html! {
        @match entry {
            None => span.muted { "—" },
            Some(entry) => {
                @if let Some(current) = &entry.current {
                    a.version href=(layout::deployment_href(current)) { (layout::version(current)) }
                    " " (layout::status(current.status))
                    @if let Some(git_ref) = &current.fields.git_ref {
                        br; span.muted { (git_ref) }
                    }
                    br;
                    span.muted {
                        (layout::time(current.finished_at.unwrap_or(current.updated_at)))
                        @if let Some(by) = &current.fields.deployed_by { " by " (by) }
                    }
                } @else {
                    span.muted { "not deployed yet" }
                }
                @if entry.in_progress {
                    br; (layout::badge("▶", "status-running", "deploying now"))
                }
            }
        }
    }
}

/// What a project with no environment shows: how to send its first deployment.
fn empty_state(base_url: &str, slug: &str) -> Markup {
    html! {
        section.empty {
            h2 { "No deployment yet" }
            p { "Report deployments from your pipeline and they appear here. Each snippet needs an "
                strong { "ingest" } " key as " code { "SHIPLOG_KEY" } "; the guides in "
                code { "docs/ci/" } " cover more CIs." }
            h3 { "GitHub Actions" }
            pre { code { (snippets::github_actions(base_url, slug)) } }
            h3 { "GitLab CI" }
            pre { code { (snippets::gitlab_ci(base_url, slug)) } }
        }
    }
}
