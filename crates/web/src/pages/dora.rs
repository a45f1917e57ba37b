//! `GET /dora`: the five DORA metrics of a scope over whole UTC days, each beside the same
//! figure for the period before, a chart per metric week by week ([`super::trends`]), the
//! figures per application and per team, and links to the deployments behind each figure.
//!
//! Bands: a figure resting on fewer than [`MIN_BAND_SAMPLES`] measurements says "too few for a
//! band" ([`shiplog_domain::dora::MIN_BAND_SAMPLES`]).
//!
//! The window ends at the end of today (UTC) and spans the chosen number of whole days. Each
//! figure links to `GET /dora/deployments`, the same window's explanation
//! (`App::dora` with `explain`): every deployment and incident behind the figures, with how it
//! was counted or why it was excluded.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::metrics::{DoraRequest, DoraShare, DoraView};
use shiplog_domain::dora::{
    Band, Change, Explained, Explanation, IncidentLink, Interval, MIN_BAND_SAMPLES, Outcome, Report,
};
use shiplog_domain::timestamp::Timestamp;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::{given, refused, trends};
use crate::session::{Page, PageError, Viewer, encode, html_response};
use shiplog_http::csv_export;

/// The windows offered, in days.
const WINDOWS: [u32; 4] = [7, 30, 90, 365];

/// Which of the page's DORA requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The figures, with the weekly series and the breakdown.
    Figures,
    /// The same window's figures, before them: for comparison.
    Previous,
    /// The deployments and incidents behind the figures.
    Explanation,
}

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Query {
    project: Option<String>,
    environment: Option<String>,
    application: Option<String>,
    days: Option<u32>,
}

impl Query {
    /// The window's days: one of [`WINDOWS`].
    fn days(&self) -> Result<u32, PageError> {
        let days = self.days.unwrap_or(30);
        if WINDOWS.contains(&days) {
            Ok(days)
        } else {
            Err(refused("days", "choose 7, 30, 90 or 365"))
        }
    }

    /// The request of the figures page (`Page::Figures`: with its weekly series and
    /// breakdown), of the explanation (`Page::Explanation`), or of the period before the
    /// figures' (`Page::Previous`): the last `days` whole UTC days up to the end of today, or
    /// the `days` before those.
    fn request(&self, now: Timestamp, page: Wanted) -> Result<DoraRequest, PageError> {
        let days = self.days()?;
        let mut end = now
            .as_offset_date_time()
            .date()
            .next_day()
            .ok_or_else(|| refused("days", "the calendar ends here"))?;
        if page == Wanted::Previous {
            end -= time::Duration::days(i64::from(days));
        }
        let start = end - time::Duration::days(i64::from(days));
        let utc = |date: time::Date| {
            Timestamp::from_offset(date.midnight().assume_utc()).map_err(|e| refused("days", e))
        };
        let scope = crate::pages::scope(
            self.project.as_ref(),
            self.environment.as_ref(),
            self.application.as_ref(),
        )?;
        Ok(DoraRequest {
            project: scope.project,
            environment: scope.environment,
            application: scope.application,
            from: Some(utc(start)?),
            to: Some(utc(end)?),
            interval: (page == Wanted::Figures).then_some(Interval::Week),
            explain: page == Wanted::Explanation,
            link_hours: shiplog_app::metrics::DEFAULT_LINK_HOURS,
            breakdown: page == Wanted::Figures,
        })
    }

    /// The query string of these filters.
    fn query_string(&self, days: u32) -> String {
        let mut out = format!("days={days}");
        for (name, value) in [
            ("project", &self.project),
            ("environment", &self.environment),
            ("application", &self.application),
        ] {
            if let Some(v) = given(value.as_ref()) {
                out.push_str(&format!("&{name}={}", encode(v)));
            }
        }
        out
    }
}

/// `GET /dora`.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
) -> Page {
    let days = query.days()?;
    let now = state.app.now();
    // The two windows are read side by side (two reader connections).
    let (view, previous) = futures_util::future::try_join(
        state
            .app
            .dora(&viewer.principal, query.request(now, Wanted::Figures)?),
        state
            .app
            .dora(&viewer.principal, query.request(now, Wanted::Previous)?),
    )
    .await?;
    let body = html! {
        h1 { "DORA metrics" }
        (filter_form(&query, days))
        (measured(&view))
        (open_too_long(&view))
        (figures(&view, &previous.report, days, &format!("/dora/deployments?{}", query.query_string(days))))
        (trends(&view, &query.query_string(days)))
        (breakdown(&view))
        p.muted { "How each figure is computed: " a href="#definitions" { "definitions" } "." }
        section #definitions {
            h2 { "Definitions" }
            dl {
                dt { "Deployment frequency" } dd { (view.definitions.deployment_frequency) }
                dt { "Lead time for changes" } dd { (view.definitions.lead_time) }
                dt { "Change failure rate" } dd { (view.definitions.change_failure_rate) }
                dt { "Failed deployment recovery time" } dd { (view.definitions.recovery_time) }
                dt { "Deployment rework rate" } dd { (view.definitions.rework_rate) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("DORA", &viewer), body),
    ))
}

/// Incidents still open after a week: each makes every later deployment of its place rework
/// and keeps its recovery unmeasured, so the page names them for someone to close.
fn open_too_long(view: &DoraView) -> Markup {
    if view.incidents_open_too_long.is_empty() {
        return html! {};
    }
    html! {
        section #incidents-open-too-long role="status" {
            p.problem {
                (view.incidents_open_too_long.len())
                @if view.incidents_open_too_long.len() == 1 { " incident has" } @else { " incidents have" }
                " been open for more than a week. While open, every later deployment of its \
                 application and environment counts as rework and its recovery is not measured: \
                 close it if it is over."
            }
            ul {
                @for incident in &view.incidents_open_too_long {
                    li {
                        (incident.title) ", open since " (layout::time(incident.opened_at))
                        " (" (format!("{:.0}", incident.open_days.floor())) " days)"
                    }
                }
            }
        }
    }
}

fn filter_form(query: &Query, days: u32) -> Markup {
    let value = |v: &Option<String>| given(v.as_ref()).unwrap_or("").to_owned();
    html! {
        form.filters method="get" action="/dora" {
            label { "Project" input name="project" value=(value(&query.project)) placeholder="any"; }
            label { "Environment" input name="environment" value=(value(&query.environment)) placeholder="every production one"; }
            label { "Application" input name="application" value=(value(&query.application)) placeholder="any"; }
            label { "Window"
                select name="days" {
                    @for option in WINDOWS {
                        option value=(option) selected[option == days] { "last " (option) " days" }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

fn measured(view: &DoraView) -> Markup {
    let window = &view.report.window;
    html! {
        p.scope {
            "From " (layout::time(window.from)) " to " (layout::time(window.to))
            " · environments counted: "
            @if view.scope.environments.is_empty() {
                span.muted { "none (no production environment yet)" }
            }
            @for (i, environment) in view.scope.environments.iter().enumerate() {
                @if i > 0 { ", " }
                code { (environment) }
            }
        }
    }
}

/// The link to the deployments behind a figure, on the explanation page.
fn behind(explain: &str, anchor: &str, what: &str) -> Markup {
    html! {
        a.behind href=(format!("{explain}#{anchor}")) { (what) }
    }
}

/// A figure's band, or why it has none: too few measurements, or nothing measured.
fn band(band: Option<Band>, samples: u64) -> Markup {
    html! {
        @match band {
            Some(band) => span class=(format!("band band-{}", band.as_str())) { (band.as_str()) },
            None if samples == 0 => span.band.muted { "no band: nothing measured" },
            None => span.band.muted { "too few for a band (fewer than " (MIN_BAND_SAMPLES) ")" },
        }
    }
}

/// The previous period's value of a figure, and how this one compares.
fn previously(days: u32, value: String, change: Change) -> Markup {
    html! {
        p.previous { "Previous " (days) " days: " (value) " · " (moved(change)) }
    }
}

/// A [`Change`] in words, coloured by a class (`trend-better`, …) beside the word.
pub(crate) fn moved(change: Change) -> Markup {
    let word = change.as_str();
    html! {
        span class=(format!("trend-{}", word.replace(' ', "-"))) { (word) }
    }
}

/// "3 of them: 1 this, 2 that", leaving out the parts that are zero.
fn parts(parts: &[(u64, &str, &str)]) -> String {
    parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| plural(*n, one, many))
        .collect::<Vec<_>>()
        .join(", ")
}

fn figures(view: &DoraView, before: &Report, days: u32, explain: &str) -> Markup {
    let report = &view.report;
    let frequency = &report.deployment_frequency;
    let lead = &report.lead_time;
    let failures = &report.change_failure_rate;
    let recovery = &report.recovery_time;
    let rework = &report.rework_rate;
    let moved_since = report.against(before);
    let not_measured = parts(&[
        (
            lead.exclusions.no_commit,
            "without a commit",
            "without a commit",
        ),
        (
            lead.exclusions.no_commit_time,
            "without a commit time",
            "without a commit time",
        ),
        (
            lead.exclusions.commit_after_deployment,
            "committed after it finished",
            "committed after they finished",
        ),
    ]);
    let failed_how = parts(&[
        (failures.failed_deployments, "failed", "failed"),
        (
            failures.failed_by_incident,
            "succeeded but caused an incident",
            "succeeded but caused incidents",
        ),
    ]);
    let recovered_from = parts(&[
        (
            recovery.from_deployments,
            "after a failed deployment",
            "after failed deployments",
        ),
        (recovery.from_incidents, "of an incident", "of incidents"),
    ]);
    let unrecovered = parts(&[
        (
            recovery.exclusions.unrecovered_failures,
            "failure",
            "failures",
        ),
        (
            recovery.exclusions.unresolved_incidents,
            "open incident",
            "open incidents",
        ),
    ]);
    let reasons = parts(&[
        (
            rework.reasons.marked,
            "marked by its sender",
            "marked by their sender",
        ),
        (
            rework.reasons.hotfix_ref,
            "from a hotfix branch",
            "from hotfix branches",
        ),
        (rework.reasons.revert, "a revert", "reverts"),
        (
            rework.reasons.open_incident,
            "during an incident",
            "during incidents",
        ),
        (
            rework.reasons.open_failure,
            "during a failure",
            "during failures",
        ),
    ]);
    html! {
        div.figures {
            section.figure #deployment-frequency {
                h2 { "Deployment frequency" }
                p.value { (format!("{:.2}", frequency.per_day)) " per day" }
                p { (band(Some(frequency.band), frequency.samples)) }
                p { (plural(frequency.samples, "successful deployment", "successful deployments")) "; median "
                    (format!("{:.1}", frequency.median_deploy_days_per_week)) " deploy days a week" }
                (previously(days, format!("{:.2} per day", before.deployment_frequency.per_day),
                    moved_since.deployment_frequency))
                p { (behind(explain, "successes", "The successful deployments")) }
            }
            section.figure #lead-time {
                h2 { "Lead time for changes" }
                p.value { "median " (layout::duration(lead.median_seconds)) }
                p { (band(lead.band, lead.samples)) }
                p { (plural(lead.samples, "lead time measured", "lead times measured"))
                    @if lead.samples > 0 { "; 90 % within " (layout::duration(lead.p90_seconds)) } }
                @if lead.excluded > 0 {
                    p { (lead.excluded) " not measured: " (not_measured) }
                }
                (previously(days, layout::duration(before.lead_time.median_seconds),
                    moved_since.lead_time))
                p { (behind(explain, "successes", "Each lead time, and why any was excluded")) }
            }
            section.figure #change-failure-rate {
                h2 { "Change failure rate" }
                p.value { (layout::percent(failures.value)) }
                p { (band(failures.band, failures.samples)) }
                p { (failures.failed) " of " (plural(failures.samples, "finished deployment", "finished deployments"))
                    " counted as failed"
                    @if failures.failed > 0 { ": " (failed_how) }
                    @if failures.incidents > 0 { " (" (plural(failures.incidents, "incident", "incidents")) " linked)" } }
                (previously(days, layout::percent(before.change_failure_rate.value),
                    moved_since.change_failure_rate))
                p { (behind(explain, "failures", "The failed deployments and their incidents")) }
            }
            section.figure #recovery-time {
                h2 { "Failed deployment recovery time" }
                p.value { "median " (layout::duration(recovery.median_seconds)) }
                p { (band(recovery.band, recovery.samples)) }
                p { (plural(recovery.samples, "recovery", "recoveries"))
                    @if recovery.samples > 0 { ": " (recovered_from) } }
                @if recovery.excluded > 0 {
                    p { "Not recovered yet, so not measured: " (unrecovered) }
                }
                (previously(days, layout::duration(before.recovery_time.median_seconds),
                    moved_since.recovery_time))
                p { (behind(explain, "recoveries", "Each failure and incident, and what ended it")) }
            }
            section.figure #rework-rate {
                h2 { "Deployment rework rate" }
                p.value { (layout::percent(rework.value)) }
                p { span.band.muted title="DORA publishes no performance bands for rework rate" { "no band (DORA gives none)" } }
                p { (rework.rework) " of " (plural(rework.samples, "finished deployment", "finished deployments"))
                    " were rework"
                    @if rework.rework > 0 { ": " (reasons) } }
                (previously(days, layout::percent(before.rework_rate.value),
                    moved_since.rework_rate))
                p { (behind(explain, "rework", "The rework deployments, each with its reason")) }
            }
        }
    }
}

/// A chart per metric over the window's weeks, and their figures as a table.
fn trends(view: &DoraView, query: &str) -> Markup {
    let Some(series) = &view.series else {
        return html! {};
    };
    html! {
        section.trends aria-labelledby="trends-heading" {
            h2 #trends-heading { "Week by week" }
            div.trend-grid {
                @for trend in trends::of(series) { (trends::chart(&trend)) }
            }
            (trends::table(series))
            (csv_link(&format!("/dora.csv?{query}"), "the weekly figures"))
        }
    }
}

/// A link that downloads `what` as CSV.
fn csv_link(href: &str, what: &str) -> Markup {
    html! {
        p.download { a href=(href) download { "Download " (what) " as CSV" } }
    }
}

/// The tables of the explanation page, as `table=` names them.
const TABLES: [&str; 5] = ["successes", "failures", "rework", "recoveries", "incidents"];

/// What `GET /dora/deployments.csv` reads besides the page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct TableQuery {
    table: Option<String>,
}

/// `GET /dora.csv`: the figures page's weekly series as CSV, as the API answers
/// `GET /api/v1/metrics/dora?interval=week` with `Accept: text/csv`.
pub(crate) async fn download(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
) -> Page {
    let mut request = query.request(state.app.now(), Wanted::Figures)?;
    request.breakdown = false;
    let view = state.app.dora(&viewer.principal, request).await?;
    let series = view.series.unwrap_or_else(|| vec![view.report.clone()]);
    let body = csv_export::dora(&series).map_err(csv_export::failed)?;
    Ok(csv_export::download(body, "dora-weekly.csv"))
}

/// `GET /dora/deployments.csv?table=…`: one table of the explanation page as CSV (the
/// deployments tables in the columns of the API's `table=deployments`).
pub(crate) async fn deployments_download(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
    table: web::Query<TableQuery>,
) -> Page {
    let table = given(table.table.as_ref()).unwrap_or("");
    if !TABLES.contains(&table) {
        return Err(refused(
            "table",
            "choose successes, failures, rework, recoveries or incidents",
        ));
    }
    let request = query.request(state.app.now(), Wanted::Explanation)?;
    let view = state.app.dora(&viewer.principal, request).await?;
    let Some(explanation) = view.explanation else {
        return Err(refused("table", "nothing to explain"));
    };
    let rows = |keep: fn(&Explained) -> bool| -> Vec<&Explained> {
        explanation.deployments.iter().filter(|d| keep(d)).collect()
    };
    let body = match table {
        "successes" => csv_export::explained(&rows(|d| d.outcome == Outcome::Succeeded)),
        "failures" => csv_export::explained(&rows(|d| d.counts_as_failure)),
        "rework" => csv_export::explained(&rows(|d| d.rework.is_some())),
        "recoveries" => csv_export::failures(&explanation.failures),
        _ => csv_export::incidents(&explanation.incidents),
    }
    .map_err(csv_export::failed)?;
    Ok(csv_export::download(body, &format!("dora-{table}.csv")))
}

/// The window's figures per application and per team.
fn breakdown(view: &DoraView) -> Markup {
    let Some(breakdown) = &view.breakdown else {
        return html! {};
    };
    html! {
        section #by-application {
            h2 { "By application" }
            @if view.scope.project.is_none() {
                p.muted { "Choose a project to see its applications' figures." }
            } @else if breakdown.by_application.is_empty() {
                p.muted { "No deployment was counted." }
            } @else {
                (share_table("Application", &breakdown.by_application, "no application"))
            }
        }
        section #by-team {
            h2 { "By team" }
            p.muted { "Each environment belongs to a team; a team's figures are those of its environments counted here." }
            @if breakdown.by_team.is_empty() {
                p.muted { "No deployment was counted." }
            } @else {
                (share_table("Team", &breakdown.by_team, "no team"))
            }
        }
    }
}

fn share_table(what: &str, shares: &[DoraShare], nameless: &str) -> Markup {
    html! {
        div.scroll tabindex="0" { table.breakdown {
            thead { tr {
                th scope="col" { (what) }
                th scope="col" { "Deployments a day" }
                th scope="col" { "Lead time (median)" }
                th scope="col" { "Change failure rate" }
                th scope="col" { "Recovery time (median)" }
                th scope="col" { "Rework rate" }
            } }
            tbody {
                @for share in shares {
                    @let r = &share.report;
                    tr {
                        th scope="row" { @match &share.code { Some(code) => code { (code) }, None => span.muted { (nameless) } } }
                        td { (format!("{:.2}", r.deployment_frequency.per_day)) " (" (r.deployment_frequency.samples) ")" }
                        td { (layout::duration(r.lead_time.median_seconds)) " (" (r.lead_time.samples) ")" }
                        td { (layout::percent(r.change_failure_rate.value)) " (" (r.change_failure_rate.samples) ")" }
                        td { (layout::duration(r.recovery_time.median_seconds)) " (" (r.recovery_time.samples) ")" }
                        td { (layout::percent(r.rework_rate.value)) " (" (r.rework_rate.samples) ")" }
                    }
                }
            }
        } }
        p.muted { "In brackets: how many deployments, lead times or recoveries each figure rests on." }
    }
}

/// "1 thing", "2 things".
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// How many rows of each kind the explanation page shows.
const EXPLAINED_ROWS: usize = 500;

/// `GET /dora/deployments`: the deployments and incidents behind the figures of `GET /dora`
/// with the same filters, each with how it was counted or why it was excluded.
pub(crate) async fn deployments(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
) -> Page {
    let days = query.days()?;
    let request = query.request(state.app.now(), Wanted::Explanation)?;
    let view = state.app.dora(&viewer.principal, request).await?;
    let explanation = view.explanation.clone().unwrap_or(Explanation {
        deployments: Vec::new(),
        failures: Vec::new(),
        incidents: Vec::new(),
    });
    let failures: Vec<&Explained> = explanation
        .deployments
        .iter()
        .filter(|d| d.counts_as_failure)
        .collect();
    let successes: Vec<&Explained> = explanation
        .deployments
        .iter()
        .filter(|d| d.outcome == Outcome::Succeeded)
        .collect();
    let rework: Vec<&Explained> = explanation
        .deployments
        .iter()
        .filter(|d| d.rework.is_some())
        .collect();
    let body = html! {
        h1 { "Behind the DORA figures" }
        p { a href=(format!("/dora?{}", query.query_string(days))) { "← The figures" } }
        (measured(&view))
        section #successes {
            h2 { "Successful deployments: " (successes.len()) }
            (csv_link(&format!("/dora/deployments.csv?{}&table=successes", query.query_string(days)), "this table"))
            p.muted { "Each counts in the deployment frequency; its lead time is measured unless the reason is given." }
            (explained_table(&successes, true))
        }
        section #failures {
            h2 { "Failed deployments: " (failures.len()) }
            (csv_link(&format!("/dora/deployments.csv?{}&table=failures", query.query_string(days)), "this table"))
            p.muted { "Each counts in the change failure rate: it failed, or an incident is linked to it." }
            (explained_table(&failures, false))
        }
        section #rework {
            h2 { "Rework deployments: " (rework.len()) }
            (csv_link(&format!("/dora/deployments.csv?{}&table=rework", query.query_string(days)), "this table"))
            p.muted { "Each counts in the deployment rework rate, for the first reason that applies: marked by its sender, a hotfix branch or ref, a revert, started during an open incident, started during a failure of its application and environment." }
            @if rework.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll tabindex="0" { table {
                    thead { tr { th scope="col" { "Finished" } th scope="col" { "Outcome" } th scope="col" { "Why it is rework" } } }
                    tbody {
                        @for row in rework.iter().take(EXPLAINED_ROWS) {
                            tr {
                                td { a href=(format!("/deployments/{}", row.id)) { (layout::time(row.finished_at)) } }
                                td { @if row.outcome == Outcome::Failed { "failed" } @else { "succeeded" } }
                                td { @if let Some(reason) = row.rework { (reason.describe()) } }
                            }
                        }
                    }
                } }
                (more(rework.len()))
            }
        }
        section #recoveries {
            h2 { "Failures: " (explanation.failures.len()) }
            (csv_link(&format!("/dora/deployments.csv?{}&table=recoveries", query.query_string(days)), "this table"))
            p.muted { "A run of failed deployments of one application in one environment, from its first failure to the next success there. Not recovered yet: excluded from the recovery time." }
            @if explanation.failures.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll tabindex="0" { table {
                    thead { tr { th scope="col" { "Started (first failure)" } th scope="col" { "Ended by" } th scope="col" { "Recovery time" } } }
                    tbody {
                        @for failure in explanation.failures.iter().take(EXPLAINED_ROWS) {
                            tr {
                                td { a href=(format!("/deployments/{}", failure.first_failure)) { (layout::time(failure.started_at)) } }
                                td {
                                    @match &failure.recovered_by {
                                        Some(id) => a href=(format!("/deployments/{id}")) { "the next success" },
                                        None => span.muted { "not recovered yet (excluded)" },
                                    }
                                }
                                td { (layout::duration(failure.recovery_seconds)) }
                            }
                        }
                    }
                } }
                (more(explanation.failures.len()))
            }
        }
        section #incidents {
            h2 { "Incidents: " (explanation.incidents.len()) }
            (csv_link(&format!("/dora/deployments.csv?{}&table=incidents", query.query_string(days)), "this table"))
            p.muted { "Incidents opened in the window count in the recovery time, from opening to resolution (open ones are excluded). An incident linked to a deployment makes it a failure: the deployment it names, or else the last successful one of its place within "
                (view.scope.incident_link_hours) " hours before it opened." }
            @if explanation.incidents.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll tabindex="0" { table {
                    thead { tr {
                        th scope="col" { "Incident" }
                        th scope="col" { "Opened" }
                        th scope="col" { "Recovery time" }
                        th scope="col" { "Linked deployments" }
                    } }
                    tbody {
                        @for incident in explanation.incidents.iter().take(EXPLAINED_ROWS) {
                            tr {
                                td { (incident.title) }
                                td { (layout::time(incident.opened_at)) }
                                td {
                                    @match (incident.recovery_seconds, incident.in_recovery_time) {
                                        (Some(s), true) => (layout::duration(Some(s))),
                                        (Some(s), false) => { (layout::duration(Some(s))) span.muted { " (opened outside the window)" } },
                                        (None, _) => span.muted { "still open (excluded)" },
                                    }
                                }
                                td {
                                    @if incident.deployments.is_empty() {
                                        span.muted { "none" }
                                    }
                                    @for (i, link) in incident.deployments.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        a href=(format!("/deployments/{}", link.id)) { (link_words(link.link)) }
                                    }
                                }
                            }
                        }
                    }
                } }
                (more(explanation.incidents.len()))
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Behind the DORA figures", &viewer), body),
    ))
}

fn explained_table(rows: &[&Explained], lead_time: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll tabindex="0" { table {
                thead { tr {
                    th scope="col" { "Finished" }
                    @if lead_time { th scope="col" { "Lead time" } } @else { th scope="col" { "Why" } }
                } }
                tbody {
                    @for row in rows.iter().take(EXPLAINED_ROWS) {
                        tr {
                            td { a href=(format!("/deployments/{}", row.id)) { (layout::time(row.finished_at)) } }
                            @if lead_time {
                                td {
                                    @match (row.lead_time_seconds, row.lead_time_excluded) {
                                        (Some(s), _) => (layout::duration(Some(s))),
                                        (None, Some(why)) => span.muted { "excluded: " (why.describe()) },
                                        (None, None) => "—",
                                    }
                                }
                            } @else {
                                td {
                                    @if row.outcome == Outcome::Failed { "it failed" }
                                    @if !row.incidents.is_empty() {
                                        @if row.outcome == Outcome::Failed { "; " }
                                        (plural(u64::try_from(row.incidents.len()).unwrap_or(u64::MAX), "incident", "incidents")) " linked"
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            (more(rows.len()))
        }
    }
}

/// How an incident was linked, in words.
fn link_words(link: IncidentLink) -> &'static str {
    match link {
        IncidentLink::Named => "named by the incident",
        IncidentLink::LastSuccess => "the last success before it",
    }
}

/// Says how many rows were left off.
fn more(total: usize) -> Markup {
    html! {
        @if total > EXPLAINED_ROWS {
            p.muted { "The newest " (EXPLAINED_ROWS) " are shown; " (total - EXPLAINED_ROWS)
                " more are in " code { "GET /api/v1/metrics/dora?explain=true" } "." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_counts_in_plain_words() {
        assert_eq!(plural(3, "recovery", "recoveries"), "3 recoveries");
        assert_eq!(plural(1, "recovery", "recoveries"), "1 recovery");
        assert_eq!(
            parts(&[
                (0, "failed", "failed"),
                (2, "caused an incident", "caused incidents")
            ]),
            "2 caused incidents"
        );
    }
}
