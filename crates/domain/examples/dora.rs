//! The five DORA metrics over plain records, with no database and no server.
//!
//! `cargo run -p shiplog-domain --example dora` builds a small week of deployments of one
//! service to production (one failure and its fix, one incident), then prints the report.
#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;

use shiplog_domain::dora::{
    Blame, DEFAULT_LINK_HOURS, DeploymentRecord, History, IncidentRecord, Outcome, Window,
};
use shiplog_domain::timestamp::Timestamp;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn main() {
    let application: Arc<str> = Arc::from("checkout");
    let environment: Arc<str> = Arc::from("production");
    let deployment = |id: &str, outcome, committed: &str, finished: &str| DeploymentRecord {
        id: id.to_owned(),
        application: application.clone(),
        environment: environment.clone(),
        outcome,
        finished_at: at(finished),
        has_commit: true,
        commit_time: Some(at(committed)),
        started_at: None,
        rework: None,
    };
    let deployments = [
        deployment(
            "d1",
            Outcome::Succeeded,
            "2025-03-03T08:00:00Z",
            "2025-03-03T10:00:00Z",
        ),
        deployment(
            "d2",
            Outcome::Failed,
            "2025-03-04T09:00:00Z",
            "2025-03-04T11:00:00Z",
        ),
        deployment(
            "d3",
            Outcome::Succeeded,
            "2025-03-04T11:30:00Z",
            "2025-03-04T12:00:00Z",
        ),
        deployment(
            "d4",
            Outcome::Succeeded,
            "2025-03-06T07:00:00Z",
            "2025-03-06T15:00:00Z",
        ),
    ];
    // An incident opened an hour after d4 and resolved two hours later; it names no deployment,
    // so it is linked to the last success before it (d4).
    let incident = IncidentRecord {
        id: "INC-1".to_owned(),
        title: "Checkout returns 500".to_owned(),
        applications: Some(vec!["checkout".to_owned()]),
        environment: Some("production".to_owned()),
        opened_at: at("2025-03-06T16:00:00Z"),
        resolved_at: Some(at("2025-03-06T18:00:00Z")),
        blame: Blame::Unnamed,
    };
    let history = History::new(deployments).with_incidents([incident], DEFAULT_LINK_HOURS);
    let Some(week) = Window::new(at("2025-03-03T00:00:00Z"), at("2025-03-10T00:00:00Z")) else {
        return;
    };
    let report = history.report(week);
    let hours =
        |seconds: Option<f64>| seconds.map_or("-".to_owned(), |s| format!("{:.1} h", s / 3600.0));
    println!(
        "deployment frequency   {:.2} a day ({} successful)",
        report.deployment_frequency.per_day, report.deployment_frequency.samples
    );
    println!(
        "lead time for changes  median {}, {} measured",
        hours(report.lead_time.median_seconds),
        report.lead_time.samples
    );
    println!(
        "change failure rate    {:.2} ({} of {}: {} failed, {} by an incident)",
        report.change_failure_rate.value.unwrap_or(0.0),
        report.change_failure_rate.failed,
        report.change_failure_rate.samples,
        report.change_failure_rate.failed_deployments,
        report.change_failure_rate.failed_by_incident
    );
    println!(
        "recovery time          median {}, {} measured",
        hours(report.recovery_time.median_seconds),
        report.recovery_time.samples
    );
    println!(
        "rework rate            {:.2} ({} of {})",
        report.rework_rate.value.unwrap_or(0.0),
        report.rework_rate.rework,
        report.rework_rate.samples
    );
}
