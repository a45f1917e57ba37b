//! CSV exports: what a listing or the DORA series answers as JSON, as rows a spreadsheet opens
//! (`Accept: text/csv`).
//!
//! Written by the `csv` crate (quoting and escaping as RFC 4180 says). A cell a spreadsheet would
//! read as a formula (one that starts with `=`, `+`, `-`, `@`, a tab or a carriage return, which
//! a commit message or a branch name may) is written with a `'` before it, as OWASP advises
//! against CSV injection; every other cell is written as stored. Times are RFC 3339 in UTC
//! (`…Z`), so each names its zone.

use shiplog_app::model::Deployment;
use shiplog_domain::timestamp::Timestamp;

/// The media type of an export.
pub const MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// Whether a request's `Accept` header asks for CSV (`text/csv`, with or without parameters,
/// anywhere in its list).
pub fn wanted(request: &actix_web::HttpRequest) -> bool {
    request
        .headers()
        .get_all(actix_web::http::header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// A CSV writer's failure (writing into memory, so nothing a request can cause) as an answer.
pub fn failed(error: csv::Error) -> crate::errors::ApiError {
    crate::errors::ApiError::from(shiplog_app::error::AppError::from(
        shiplog_app::ports::BackendFailure::unavailable(format!("CSV export: {error}")),
    ))
}

/// The columns of a deployments export, in order.
pub const DEPLOYMENT_COLUMNS: [&str; 24] = [
    "id",
    "project",
    "application",
    "environment",
    "environment_kind",
    "status",
    "provider",
    "provider_status",
    "started_at",
    "finished_at",
    "duration_seconds",
    "commit_sha",
    "commit_timestamp",
    "ref",
    "branch",
    "commit_message",
    "external_id",
    "run_url",
    "deployed_by",
    "build_number",
    "image",
    "references",
    "rework",
    "created_at",
];

/// A cell a spreadsheet takes as text, never as a formula.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn time(at: Option<Timestamp>) -> String {
    at.map(Timestamp::to_rfc3339).unwrap_or_default()
}

/// Deployments as CSV rows, after the header row when `header`.
pub fn deployments(items: &[Deployment], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(items.len() * 256));
    if header {
        out.write_record(DEPLOYMENT_COLUMNS)?;
    }
    for d in items {
        let f = &d.fields;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let duration = d
            .duration_seconds()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let references = d
            .references
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let row: [String; 24] = [
            d.id.to_string(),
            d.project.to_string(),
            d.application.to_string(),
            d.environment.to_string(),
            d.environment_kind.as_str().to_owned(),
            d.status.as_str().to_owned(),
            d.provider.as_str().to_owned(),
            d.provider_status.clone(),
            time(d.started_at),
            time(d.finished_at),
            duration,
            f.commit_sha
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            time(f.commit_timestamp),
            text(&f.git_ref),
            text(&f.branch),
            text(&f.commit_message),
            text(&f.external_id),
            text(&f.run_url),
            text(&f.deployed_by),
            text(&f.build_number),
            text(&f.image),
            references,
            d.rework
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            d.created_at.to_rfc3339(),
        ];
        out.write_record(row.iter().map(|value| cell(value).into_owned()))?;
    }
    out.into_inner().map_err(|error| error.into_error().into())
}

/// The columns of a DORA export, in order: the bucket, then each metric's figure, sample and
/// band (empty where the metric has no figure: no sample, or too few).
pub const DORA_COLUMNS: [&str; 20] = [
    "from",
    "to",
    "deployments_per_day",
    "median_deploy_days_per_week",
    "deployment_frequency_band",
    "lead_time_median_seconds",
    "lead_time_samples",
    "lead_time_band",
    "change_failure_rate",
    "failed",
    "succeeded",
    "change_failure_rate_band",
    "recovery_median_seconds",
    "recovery_samples",
    "recovery_band",
    "rework_rate",
    "rework",
    "rework_samples",
    "rework_band",
    "excluded_from_lead_time",
];

/// DORA reports as CSV, one row each (a series' buckets, or the window's one report), after a
/// header row.
pub fn dora(reports: &[shiplog_domain::dora::Report]) -> Result<Vec<u8>, csv::Error> {
    use shiplog_domain::dora::Band;

    let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    let band = |band: Option<Band>| band.map(|b| b.as_str().to_owned()).unwrap_or_default();
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(DORA_COLUMNS)?;
    for r in reports {
        let row: [String; 20] = [
            r.window.from.to_rfc3339(),
            r.window.to.to_rfc3339(),
            r.deployment_frequency.per_day.to_string(),
            r.deployment_frequency
                .median_deploy_days_per_week
                .to_string(),
            r.deployment_frequency.band.as_str().to_owned(),
            number(r.lead_time.median_seconds),
            r.lead_time.samples.to_string(),
            band(r.lead_time.band),
            number(r.change_failure_rate.value),
            r.change_failure_rate.failed.to_string(),
            r.change_failure_rate.succeeded.to_string(),
            band(r.change_failure_rate.band),
            number(r.recovery_time.median_seconds),
            r.recovery_time.samples.to_string(),
            band(r.recovery_time.band),
            number(r.rework_rate.value),
            r.rework_rate.rework.to_string(),
            r.rework_rate.samples.to_string(),
            band(r.rework_rate.band),
            r.lead_time.excluded.to_string(),
        ];
        out.write_record(row)?;
    }
    out.into_inner().map_err(|error| error.into_error().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn formulas_are_written_as_text_and_the_rest_as_is() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1+2"), "'-1+2");
        assert_eq!(cell("@sum"), "'@sum");
        assert_eq!(cell("fix: login (#PR-1)"), "fix: login (#PR-1)");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn the_accept_header_asks_for_csv_anywhere_in_its_list() {
        let ask = |accept: &str| {
            wanted(
                &actix_web::test::TestRequest::default()
                    .insert_header(("Accept", accept))
                    .to_http_request(),
            )
        };
        assert!(ask("text/csv"));
        assert!(ask("application/json;q=0.5, Text/CSV;charset=utf-8"));
        assert!(!ask("application/json"));
        assert!(!ask("text/csv-schema"));
        assert!(!wanted(
            &actix_web::test::TestRequest::default().to_http_request()
        ));
    }
}
