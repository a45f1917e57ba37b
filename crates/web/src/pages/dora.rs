//! `GET /dora`: the five DORA metrics of a scope over whole UTC days, with a chart per day or
//! week, and links to the deployments behind each figure.
//!
//! The window ends at the end of today (UTC) and spans the chosen number of whole days. Each
//! figure links to `GET /dora/deployments`, the same window's explanation
//! (`App::dora` with `explain`): every deployment and incident behind the figures, with how it
//! was counted or why it was excluded.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::metrics::{DoraRequest, DoraView};
use shiplog_domain::dora::{Band, Explained, Explanation, IncidentLink, Interval, Outcome, Report};
use shiplog_domain::timestamp::Timestamp;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::{given, refused};
use crate::session::{Page, PageError, Viewer, encode, html_response};

/// The windows offered, in days.
const WINDOWS: [u32; 4] = [7, 30, 90, 365];

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Query {
    project: Option<String>,
    environment: Option<String>,
    application: Option<String>,
    days: Option<u32>,
}

/// The UTC day of a time, as the deployments list's filters take it.
fn day(at: Timestamp) -> String {
    let date = at.as_offset_date_time().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
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

    /// The request: the last `days` whole UTC days up to the end of today.
    fn request(&self, now: Timestamp, explain: bool) -> Result<DoraRequest, PageError> {
        let days = self.days()?;
        let end = now
            .as_offset_date_time()
            .date()
            .next_day()
            .ok_or_else(|| refused("days", "the calendar ends here"))?;
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
            interval: (!explain).then_some(if days <= 90 {
                Interval::Day
            } else {
                Interval::Week
            }),
            explain,
            link_hours: shiplog_app::metrics::DEFAULT_LINK_HOURS,
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
    let request = query.request(state.app.now(), false)?;
    let view = state.app.dora(&viewer.principal, request).await?;
    let body = html! {
        h1 { "DORA metrics" }
        (filter_form(&query, days))
        (measured(&view))
        (open_too_long(&view))
        (figures(&view, &format!("/dora/deployments?{}", query.query_string(days))))
        (charts(&view, days))
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

fn band(band: Option<Band>) -> Markup {
    html! {
        @match band {
            Some(band) => span class=(format!("band band-{}", band.as_str())) { (band.as_str()) },
            None => span.band.muted { "no band" },
        }
    }
}

fn figures(view: &DoraView, explain: &str) -> Markup {
    let report = &view.report;
    let frequency = &report.deployment_frequency;
    let lead = &report.lead_time;
    let failures = &report.change_failure_rate;
    let recovery = &report.recovery_time;
    let rework = &report.rework_rate;
    html! {
        div.figures {
            section.figure #deployment-frequency {
                h2 { "Deployment frequency" }
                p.value { (format!("{:.2}", frequency.per_day)) " per day" }
                p { (band(Some(frequency.band))) }
                p { (count(frequency.samples, "successful deployment")) "; median "
                    (format!("{:.1}", frequency.median_deploy_days_per_week)) " deploy days a week" }
                p { (behind(explain, "successes", "The successful deployments")) }
            }
            section.figure #lead-time {
                h2 { "Lead time for changes" }
                p.value { "median " (layout::duration(lead.median_seconds)) }
                p { (band(lead.band)) }
                p { (lead.samples) " measured, p90 " (layout::duration(lead.p90_seconds)) }
                p { (lead.excluded) " excluded: "
                    (lead.exclusions.no_commit) " without a commit, "
                    (lead.exclusions.no_commit_time) " without a commit time, "
                    (lead.exclusions.commit_after_deployment) " committed after they finished" }
                p { (behind(explain, "successes", "Each lead time, and why any was excluded")) }
            }
            section.figure #change-failure-rate {
                h2 { "Change failure rate" }
                p.value { @match failures.value { Some(v) => (format!("{:.1} %", v * 100.0)), None => "—" } }
                p { (band(failures.band)) }
                p { (failures.failed) " failed of " (failures.samples) " finished deployments: "
                    (failures.failed_deployments) " failed, "
                    (failures.failed_by_incident) " succeeded but caused "
                    (count(failures.incidents, "incident")) }
                p { (behind(explain, "failures", "The failed deployments and their incidents")) }
            }
            section.figure #recovery-time {
                h2 { "Failed deployment recovery time" }
                p.value { "median " (layout::duration(recovery.median_seconds)) }
                p { (band(recovery.band)) }
                p { (count(recovery.samples, "recovery")) ": "
                    (recovery.from_deployments) " after failed deployments, "
                    (recovery.from_incidents) " of incidents" }
                p { (recovery.excluded) " not recovered yet (excluded): "
                    (count(recovery.exclusions.unrecovered_failures, "failure")) ", "
                    (count(recovery.exclusions.unresolved_incidents, "open incident")) }
                p { (behind(explain, "recoveries", "Each failure and incident, and what ended it")) }
            }
            section.figure #rework-rate {
                h2 { "Deployment rework rate" }
                p.value { @match rework.value { Some(v) => (format!("{:.1} %", v * 100.0)), None => "—" } }
                p { span.band.muted title="DORA publishes no performance bands for rework rate" { "no band (DORA gives none)" } }
                p { (rework.rework) " of " (rework.samples) " finished deployments were rework. By reason: marked "
                    (rework.reasons.marked) " · hotfix branch "
                    (rework.reasons.hotfix_ref) " · revert "
                    (rework.reasons.revert) " · during an incident "
                    (rework.reasons.open_incident) " · during a failure "
                    (rework.reasons.open_failure) }
                p { (behind(explain, "rework", "The rework deployments, each with its reason")) }
            }
        }
    }
}

/// Bar charts of the series: successful and failed deployments per bucket. Drawn as SVG with
/// presentation attributes only (the Content-Security-Policy allows no inline style).
fn charts(view: &DoraView, days: u32) -> Markup {
    let Some(series) = &view.series else {
        return html! {};
    };
    let unit = if days <= 90 { "day" } else { "week" };
    let most = series
        .iter()
        .map(|r| r.change_failure_rate.samples)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = 720.0_f64;
    let height = 120.0_f64;
    let count = series.len().max(1);
    let slot = width / count as f64;
    let bar = (slot * 0.8).max(1.0);
    html! {
        section.chart {
            h2 { "Deployments per " (unit) }
            p.legend {
                span.key.key-success aria-hidden="true" {} " successful "
                span.key.key-failed aria-hidden="true" {} " failed"
            }
            svg viewBox=(format!("0 0 {width} {height}")) preserveAspectRatio="none" role="img"
                aria-label=(format!("successful and failed deployments per {unit}, {} {unit}s", series.len())) {
                @for (i, report) in series.iter().enumerate() {
                    @let x = i as f64 * slot;
                    @let ok = bar_height(report.change_failure_rate.succeeded, most, height);
                    @let failed = bar_height(report.change_failure_rate.failed, most, height);
                    g {
                        title { (bucket_title(report, unit)) }
                        rect.success x=(format!("{x:.1}")) y=(format!("{:.1}", height - ok)) width=(format!("{bar:.1}")) height=(format!("{ok:.1}")) {}
                        rect.failed x=(format!("{x:.1}")) y=(format!("{:.1}", height - ok - failed)) width=(format!("{bar:.1}")) height=(format!("{failed:.1}")) {}
                    }
                }
            }
        }
    }
}

/// "1 thing", "2 things".
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn bar_height(count: u64, most: u64, height: f64) -> f64 {
    count as f64 / most as f64 * (height - 4.0)
}

fn bucket_title(report: &Report, unit: &str) -> String {
    format!(
        "{unit} of {}: {} successful, {} failed",
        day(report.window.from),
        report.change_failure_rate.succeeded,
        report.change_failure_rate.failed
    )
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
    let request = query.request(state.app.now(), true)?;
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
            p.muted { "Each counts in the deployment frequency; its lead time is measured unless the reason is given." }
            (explained_table(&successes, true))
        }
        section #failures {
            h2 { "Failed deployments: " (failures.len()) }
            p.muted { "Each counts in the change failure rate: it failed, or an incident is linked to it." }
            (explained_table(&failures, false))
        }
        section #rework {
            h2 { "Rework deployments: " (rework.len()) }
            p.muted { "Each counts in the deployment rework rate, for the first reason that applies: marked by its sender, a hotfix branch or ref, a revert, started during an open incident, started during a failure of its application and environment." }
            @if rework.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll { table {
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
            p.muted { "A run of failed deployments of one application in one environment, from its first failure to the next success there. Not recovered yet: excluded from the recovery time." }
            @if explanation.failures.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll { table {
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
            p.muted { "Incidents opened in the window count in the recovery time, from opening to resolution (open ones are excluded). An incident linked to a deployment makes it a failure: the deployment it names, or else the last successful one of its place within "
                (view.scope.incident_link_hours) " hours before it opened." }
            @if explanation.incidents.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll { table {
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
            div.scroll { table {
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
                                        (count(u64::try_from(row.incidents.len()).unwrap_or(u64::MAX), "incident")) " linked"
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
    fn bars_fill_the_height_for_the_largest_bucket() {
        assert!((bar_height(5, 5, 120.0) - 116.0).abs() < 1e-9);
        assert!(bar_height(0, 5, 120.0).abs() < 1e-9);
    }
}
