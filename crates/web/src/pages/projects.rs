//! `GET /`: the projects the viewer's key sees, each with its pages.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::html;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::session::{Page, Viewer, html_response};

/// `GET /`.
pub(crate) async fn index(state: web::Data<WebState>, viewer: Viewer) -> Page {
    let projects = state.app.list_projects(&viewer.principal).await?;
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() {
            p.empty {
                "No project yet. An admin key creates one with "
                code { "POST /api/v1/projects" }
                " (see the README's walkthrough); it appears here."
            }
        } @else {
            ul.cards {
                @for project in &projects {
                    li.card {
                        h2 { a href=(format!("/projects/{}", project.slug)) { (project.name) } }
                        p.muted { code { (project.slug) } }
                        p.links {
                            a href=(format!("/projects/{}", project.slug)) { "Environments" }
                            a href=(format!("/deployments?project={}", project.slug)) { "Deployments" }
                            a href=(format!("/dora?project={}", project.slug)) { "DORA" }
                            a href=(format!("/projects/{}/hooks", project.slug)) { "Hooks" }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Projects", &viewer), body),
    ))
}
