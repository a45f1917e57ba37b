//! `GET /dora`: the four DORA metrics of a scope over whole UTC days, with a chart per day or
//! week, and links to the deployments behind each figure.
//!
//! The window ends at the end of today (UTC) and spans the chosen number of whole days, so the
//! deployments list's day filters select exactly the deployments the figures counted.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::metrics::{DoraRequest, DoraView};
use shiplog_domain::dora::{Band, Interval, Report};
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::timestamp::Timestamp;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::pages::given;
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

fn refused(field: &str, message: impl std::fmt::Display) -> PageError {
    PageError::Refused {
        status: StatusCode::BAD_REQUEST,
        message: format!("The filter {field} cannot be used: {message}"),
    }
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

/// `GET /dora`.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    query: web::Query<Query>,
) -> Page {
    let days = query.days.unwrap_or(30);
    if !WINDOWS.contains(&days) {
        return Err(refused("days", "choose 7, 30, 90 or 365"));
    }
    let today = state.app.now().as_offset_date_time().date();
    let end = today
        .next_day()
        .ok_or_else(|| refused("days", "the calendar ends here"))?;
    let start = end - time::Duration::days(i64::from(days));
    let utc = |date: time::Date| {
        Timestamp::from_offset(date.midnight().assume_utc()).map_err(|e| refused("days", e))
    };
    let request = DoraRequest {
        project: given(query.project.as_ref())
            .map(ProjectSlug::parse)
            .transpose()
            .map_err(|e| refused("project", e))?,
        environment: given(query.environment.as_ref())
            .map(EnvironmentCode::parse)
            .transpose()
            .map_err(|e| refused("environment", e))?,
        application: given(query.application.as_ref())
            .map(ApplicationCode::parse)
            .transpose()
            .map_err(|e| refused("application", e))?,
        from: Some(utc(start)?),
        to: Some(utc(end)?),
        interval: Some(if days <= 90 {
            Interval::Day
        } else {
            Interval::Week
        }),
    };
    let view = state.app.dora(&viewer.principal, request).await?;
    let body = html! {
        h1 { "DORA metrics" }
        (filter_form(&query, days))
        (scope(&view))
        (figures(&view, &query))
        (charts(&view, days))
        p.muted { "How each figure is computed: " a href="#definitions" { "definitions" } "." }
        section #definitions {
            h2 { "Definitions" }
            dl {
                dt { "Deployment frequency" } dd { (view.definitions.deployment_frequency) }
                dt { "Lead time for changes" } dd { (view.definitions.lead_time) }
                dt { "Change failure rate" } dd { (view.definitions.change_failure_rate) }
                dt { "Failed deployment recovery time" } dd { (view.definitions.recovery_time) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("DORA", &viewer), body),
    ))
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

fn scope(view: &DoraView) -> Markup {
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

/// The links to the deployments behind a figure: one per environment counted, with the
/// window's days and the status that figure counts.
fn behind(view: &DoraView, query: &Query, status: &str) -> Markup {
    let window = &view.report.window;
    let until = window
        .to
        .checked_add(time::Duration::days(-1))
        .unwrap_or(window.to);
    let mut base = format!(
        "status={status}&since={}&until={}",
        day(window.from),
        day(until)
    );
    for (name, value) in [
        ("project", &query.project),
        ("application", &query.application),
    ] {
        if let Some(v) = given(value.as_ref()) {
            base.push_str(&format!("&{name}={}", encode(v)));
        }
    }
    html! {
        @for environment in &view.scope.environments {
            a.behind href=(format!("/deployments?{base}&environment={}", encode(environment.as_str()))) {
                (status) " in " (environment)
            }
            " "
        }
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

/// A duration in seconds, in the largest unit that keeps it readable.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        Some(s) => format!("{:.1} days", s / 86_400.0),
    }
}

fn figures(view: &DoraView, query: &Query) -> Markup {
    let report = &view.report;
    let frequency = &report.deployment_frequency;
    let lead = &report.lead_time;
    let failures = &report.change_failure_rate;
    let recovery = &report.recovery_time;
    html! {
        div.figures {
            section.figure #deployment-frequency {
                h2 { "Deployment frequency" }
                p.value { (format!("{:.2}", frequency.per_day)) " per day" }
                p { (band(Some(frequency.band))) }
                p { (count(frequency.samples, "successful deployment")) "; median "
                    (format!("{:.1}", frequency.median_deploy_days_per_week)) " deploy days a week" }
                p { (behind(view, query, "success")) }
            }
            section.figure #lead-time {
                h2 { "Lead time for changes" }
                p.value { "median " (duration(lead.median_seconds)) }
                p { (band(lead.band)) }
                p { (lead.samples) " measured, p90 " (duration(lead.p90_seconds)) }
                p { (lead.excluded) " excluded: "
                    (lead.exclusions.no_commit) " without a commit, "
                    (lead.exclusions.no_commit_time) " without a commit time, "
                    (lead.exclusions.commit_after_deployment) " committed after they finished" }
                p { (behind(view, query, "success")) }
            }
            section.figure #change-failure-rate {
                h2 { "Change failure rate" }
                p.value { @match failures.value { Some(v) => (format!("{:.1} %", v * 100.0)), None => "—" } }
                p { (band(failures.band)) }
                p { (failures.failed) " failed of " (failures.samples) " finished deployments" }
                p { (behind(view, query, "failed")) }
            }
            section.figure #recovery-time {
                h2 { "Failed deployment recovery time" }
                p.value { "median " (duration(recovery.median_seconds)) }
                p { (band(recovery.band)) }
                p { (count(recovery.samples, "recovered incident")) ", " (recovery.excluded) " not recovered yet (excluded)" }
                p { (behind(view, query, "failed")) }
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

    #[test]
    fn bars_fill_the_height_for_the_largest_bucket() {
        assert!((bar_height(5, 5, 120.0) - 116.0).abs() < 1e-9);
        assert!(bar_height(0, 5, 120.0).abs() < 1e-9);
    }
}
