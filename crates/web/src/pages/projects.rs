//! `GET /`: the overview ([`shiplog_app::overview`]) of the projects the viewer may see: what
//! is deploying now, what needs attention (failures no success has followed, open
//! incidents), where each application stands in each environment and how far an environment
//! lags behind the one running the application's newest version, each project's DORA figures
//! beside the period before, and the projects with their pages.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::overview::{OVERVIEW_DAYS, Overview, OverviewFilter, Place};
use shiplog_domain::ids::ProjectSlug;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::deployments;
use crate::pages::dora::moved;
use crate::pages::{filter, given};
use crate::session::{Page, Viewer, encode, html_response};
use shiplog_domain::dora::Change;

/// The overview's filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Query {
    project: Option<String>,
    application: Option<String>,
}

/// `GET /`.
pub(crate) async fn index(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
) -> Page {
    let overview = state
        .app
        .overview(
            &viewer.principal,
            OverviewFilter {
                project: filter("project", query.project.as_ref(), ProjectSlug::parse)?,
                application: given(query.application.as_ref()).map(str::to_owned),
            },
        )
        .await?;
    let projects = state.app.list_projects(&viewer.principal).await?;
    let value = |v: &Option<String>| given(v.as_ref()).unwrap_or("").to_owned();
    let body = html! {
        h1 { "Overview" }
        form.filters method="get" action="/" {
            label { "Project" input name="project" value=(value(&query.project)) placeholder="any"; }
            label { "Application" input name="application" value=(value(&query.application)) placeholder="any (part of its code)"; }
            button type="submit" { "Filter" }
            a href="/" { "Clear" }
        }
        (deploying(&overview))
        (attention(&overview))
        (matrix(&overview))
        (figures(&overview))
        section #projects aria-labelledby="projects-heading" {
            h2 #projects-heading { "Projects" }
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
                            h3 { a href=(format!("/projects/{}", project.slug)) { (project.name) } }
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
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Overview", &viewer), body),
    ))
}

fn deploying(overview: &Overview) -> Markup {
    html! {
        section #deploying-now aria-labelledby="deploying-heading" {
            h2 #deploying-heading { "Deploying now" }
            @if overview.deploying.is_empty() {
                p.muted { "Nothing is running or waiting to run." }
            } @else {
                (deployments::table(&overview.deploying, None))
            }
        }
    }
}

fn attention(overview: &Overview) -> Markup {
    html! {
        section #attention aria-labelledby="attention-heading" {
            h2 #attention-heading { "Needs attention" }
            @if overview.failing.is_empty() && overview.open_incidents.is_empty() {
                p.muted { "No failure waits for a fix and no incident is open." }
            }
            @if !overview.failing.is_empty() {
                h3 { "Failed, and not deployed successfully since" }
                (deployments::table(&overview.failing, None))
            }
            @if !overview.open_incidents.is_empty() {
                h3 { "Open incidents" }
                ul.incidents {
                    @for incident in &overview.open_incidents {
                        li {
                            strong { (incident.title) }
                            " — " (incident.project)
                            @if let Some(application) = &incident.application { " · " (application) }
                            @if let Some(environment) = &incident.environment { " · " (environment) }
                            ", open since " (layout::time(incident.opened_at))
                        }
                    }
                }
            }
        }
    }
}

/// One cell of the matrix: the current version, whether a deployment is under way, and how
/// far it lags behind the environment running the newest version.
fn place(place: &Place) -> Markup {
    html! {
        @match &place.current {
            Some(current) => {
                a.version href=(layout::deployment_href(current)) { (layout::version(current)) }
                br;
                span.muted { (layout::time(current.deployed_at())) }
            }
            None => span.muted { "no success yet" },
        }
        @if place.in_progress {
            br; (layout::badge("▶", "status-running", "deploying"))
        }
        @if let Some(behind) = &place.behind {
            br;
            span.behind-by {
                (behind.commits) @if behind.commits == 1 { " commit" } @else { " commits" }
                @if !behind.change_requests.is_empty() {
                    ", " (behind.change_requests.len())
                    @if behind.change_requests.len() == 1 { " change request" } @else { " change requests" }
                }
                " behind " (behind.environment)
            }
        }
    }
}

fn matrix(overview: &Overview) -> Markup {
    html! {
        section #where-is-what aria-labelledby="where-heading" {
            h2 #where-heading { "Where is what" }
            @if overview.places.is_empty() {
                p.muted { "No application has been deployed successfully yet." }
            } @else {
                p.muted { "Each application's current version (its last successful deployment) in each environment. Where another environment runs a newer version, the cell says how many commits and change requests it lacks." }
                div.scroll tabindex="0" {
                    table.matrix {
                        thead { tr {
                            th scope="col" { "Application" }
                            @for (code, kind) in &overview.environments {
                                th scope="col" {
                                    (code)
                                    @if code.as_str() != kind.as_str() { br; span.muted { (kind.as_str()) } }
                                }
                            }
                        } }
                        tbody {
                            @for row in &overview.places {
                                tr {
                                    th scope="row" {
                                        a href=(format!("/projects/{}", row.project)) { (row.project) }
                                        " / " (row.application)
                                    }
                                    @for cell in &row.cells {
                                        td { @match cell { Some(p) => (place(p)), None => span.muted { "—" } } }
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

fn figures(overview: &Overview) -> Markup {
    let compare = |shown: String, change: Change| {
        html! {
            (shown) br;
            span.previous { (moved(change)) }
        }
    };
    html! {
        section #figures aria-labelledby="figures-heading" {
            h2 #figures-heading { "DORA, last " (OVERVIEW_DAYS) " days" }
            @if overview.projects.is_empty() {
                p.muted { "No project to measure." }
            } @else {
                p.muted { "Each figure beside the " (OVERVIEW_DAYS) " days before: better, worse or unchanged." }
                div.scroll tabindex="0" {
                    table.figures-table {
                        thead { tr {
                            th scope="col" { "Project" }
                            th scope="col" { "Deployments a day" }
                            th scope="col" { "Lead time (median)" }
                            th scope="col" { "Change failure rate" }
                            th scope="col" { "Recovery time (median)" }
                            th scope="col" { "Rework rate" }
                        } }
                        tbody {
                            @for p in &overview.projects {
                                @let now = &p.now;
                                @let moved_since = now.against(&p.before);
                                tr {
                                    th scope="row" { a href=(format!("/dora?project={}", encode(p.project.slug.as_str()))) { (p.project.name) } }
                                    td { (compare(format!("{:.2}", now.deployment_frequency.per_day), moved_since.deployment_frequency)) }
                                    td { (compare(layout::duration(now.lead_time.median_seconds), moved_since.lead_time)) }
                                    td { (compare(layout::percent(now.change_failure_rate.value), moved_since.change_failure_rate)) }
                                    td { (compare(layout::duration(now.recovery_time.median_seconds), moved_since.recovery_time)) }
                                    td { (compare(layout::percent(now.rework_rate.value), moved_since.rework_rate)) }
                                }
                            }
                        }
                    }
                }
                @if overview.projects_left_out > 0 {
                    p.muted { (overview.projects_left_out) " more projects: see the DORA page." }
                }
            }
        }
    }
}
