//! `GET /projects/{slug}/references/{key}`: where a change request went. `GET
//! /projects/{slug}/references?key=…` (the board's search form) redirects there.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;
use shiplog_domain::ids::ProjectSlug;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::given;
use crate::session::{Page, PageError, Viewer, encode, html_response, redirect};

fn not_found(what: &str) -> PageError {
    PageError::Refused {
        status: StatusCode::NOT_FOUND,
        message: format!("There is no {what}."),
    }
}

/// The search form's query.
#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    key: Option<String>,
}

/// `GET /projects/{slug}/references?key=…`: to the reference's page.
pub(crate) async fn search(
    _viewer: Viewer,
    slug: web::Path<String>,
    search: web::Query<Search>,
) -> HttpResponse {
    match given(search.key.as_ref()) {
        Some(key) => redirect(&format!(
            "/projects/{}/references/{}",
            encode(&slug),
            encode(key)
        )),
        None => redirect(&format!("/projects/{}", encode(&slug))),
    }
}

/// `GET /projects/{slug}/references/{key}`.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Page {
    let (slug, key) = path.into_inner();
    let project = ProjectSlug::parse(&slug).map_err(|_| not_found("such project"))?;
    let reference = state
        .app
        .get_reference(&viewer.principal, project.clone(), &key)
        .await?;
    let reached = reference.reached();
    let title = format!("{} in {project}", reference.key.as_str());
    let body = html! {
        h1 { "Where is " code { (reference.key.as_str()) } "?" }
        p { "In " a href=(format!("/projects/{project}")) { (project) } ": "
            strong { (reference.status.as_str()) }
            @if let (Some(at), Some(to)) = (reference.deployed_at, &reference.deployed_to) {
                " — deployed to " code { (to) } " " (layout::time(at))
            }
        }
        h2 { "Environments it reached" }
        @if reached.is_empty() {
            p.muted { "No successful deployment carried it yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Environment" } th scope="col" { "First there" } th scope="col" { "Deployment" } } }
                tbody {
                    @for (environment, deployment) in &reached {
                        tr {
                            th scope="row" { (environment) }
                            td { (layout::time(deployment.finished_at.unwrap_or(deployment.updated_at))) }
                            td { a href=(layout::deployment_href(deployment)) { (deployment.application) " " (layout::version(deployment)) } }
                        }
                    }
                }
            }
        }
        h2 { "Every deployment that carried it" }
        ul {
            @for deployment in &reference.deployments {
                li {
                    a href=(layout::deployment_href(deployment)) { (layout::time(deployment.started_at.unwrap_or(deployment.created_at))) }
                    " " (deployment.application) " to " (deployment.environment) " "
                    (layout::status(deployment.status))
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}
