//! CSV exports: what a listing or the DORA series answers as JSON, as rows a spreadsheet opens
//! (`Accept: text/csv`).
//!
//! Written by the `csv` crate (quoting and escaping as RFC 4180 says). A cell a spreadsheet would
//! read as a formula (one that starts with `=`, `+`, `-`, `@`, a tab or a carriage return, which
//! a commit message or a branch name may) is written with a `'` before it, as OWASP advises
//! against CSV injection; every other cell is written as stored. Times are RFC 3339 in UTC
//! (`…Z`), so each names its zone.

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use futures_util::StreamExt as _;
use shiplog_app::App;
use shiplog_app::auth::Principal;
use shiplog_app::deployments::ListDeployments;
use shiplog_app::error::AppError;
use shiplog_app::model::Deployment;
use shiplog_app::ports::DeploymentPage;
use shiplog_domain::dora::{Explained, ExplainedFailure, ExplainedIncident};
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

/// A CSV writer's failure (writing into memory, so nothing a request can cause) as an error.
pub fn failed(error: csv::Error) -> AppError {
    AppError::from(shiplog_app::ports::BackendFailure::unavailable(format!(
        "CSV export: {error}"
    )))
}

/// A whole export as a download named `filename`, which no cache keeps.
pub fn download(body: Vec<u8>, filename: &str) -> HttpResponse {
    attachment(filename).body(body)
}

/// The headers of every download: CSV, an attachment named `filename`, kept by no cache.
fn attachment(filename: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type(MEDIA_TYPE)
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    response
}

/// Every deployment `list` matches, newest first, as a streamed CSV download: read 200 at a
/// time, so memory holds one page whatever the export's size. `list.limit`, when set, caps the
/// rows; `list.cursor` starts after that page. The first page is read before the answer
/// starts, so a bad filter or cursor is still an error the caller answers as usual; a failure
/// later ends the stream early (the client sees a cut-off download, and the server logs it).
/// The API (`Accept: text/csv`) and the dashboard's download link both answer with it.
pub async fn deployments_download(
    app: App,
    principal: Principal,
    mut list: ListDeployments,
) -> Result<HttpResponse, AppError> {
    const PAGE: u32 = 200;
    let mut remaining = list
        .limit
        .take()
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    list.limit = Some(PAGE);
    let first = app.list_deployments(&principal, list.clone()).await?;
    let (items, next) = rows_of(first, &mut remaining);
    let head = deployments(&items, true).map_err(failed)?;
    let rest = futures_util::stream::unfold((next, remaining), move |(cursor, mut remaining)| {
        let (app, principal, mut list) = (app.clone(), principal.clone(), list.clone());
        async move {
            let cursor = cursor?;
            list.cursor = Some(cursor);
            let page = match app.list_deployments(&principal, list).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "a CSV export of deployments stopped early");
                    return Some((
                        Err(actix_web::error::ErrorServiceUnavailable(error.to_string())),
                        (None, 0),
                    ));
                }
            };
            let (items, next) = rows_of(page, &mut remaining);
            let rows = deployments(&items, false)
                .map(Bytes::from)
                .map_err(actix_web::error::ErrorInternalServerError);
            Some((rows, (next, remaining)))
        }
    });
    let body =
        futures_util::stream::once(async move { Ok::<_, actix_web::Error>(Bytes::from(head)) })
            .chain(rest);
    Ok(attachment("deployments.csv").streaming(body))
}

/// A page's deployments, at most `remaining` of them (counted off), and the cursor of the next
/// page while rows remain.
fn rows_of(page: DeploymentPage, remaining: &mut usize) -> (Vec<Deployment>, Option<String>) {
    let mut items = page.items;
    items.truncate(*remaining);
    *remaining -= items.len();
    let next = page
        .next_cursor
        .filter(|_| *remaining > 0)
        .map(|c| c.to_string());
    (items, next)
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

/// Writes `header` then `rows`; each text cell goes through [`cell`], numbers as they are.
fn table(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(header)?;
    for row in rows {
        out.write_record(row.iter().map(|value| cell(value).into_owned()))?;
    }
    out.into_inner().map_err(|error| error.into_error().into())
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The columns of the deployments behind DORA figures.
pub const EXPLAINED_COLUMNS: [&str; 8] = [
    "id",
    "finished_at",
    "outcome",
    "counts_as_failure",
    "incidents",
    "lead_time_seconds",
    "lead_time_excluded",
    "rework",
];

/// The deployments behind DORA figures, one row each, as `explanation.deployments` has them
/// (linked incidents by id, space-separated).
pub fn explained(rows: &[&Explained]) -> Result<Vec<u8>, csv::Error> {
    table(
        &EXPLAINED_COLUMNS,
        rows.iter().map(|d| {
            vec![
                d.id.clone(),
                d.finished_at.to_rfc3339(),
                d.outcome.as_str().to_owned(),
                d.counts_as_failure.to_string(),
                d.incidents
                    .iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                number(d.lead_time_seconds),
                d.lead_time_excluded
                    .map(|e| e.as_str().to_owned())
                    .unwrap_or_default(),
                d.rework.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            ]
        }),
    )
}

/// A table of a DORA explanation (`table=` of `GET /api/v1/metrics/dora?explain=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `explanation.deployments`.
    Deployments,
    /// `explanation.failures`.
    Failures,
    /// `explanation.incidents`.
    Incidents,
}

impl Table {
    /// Reads `deployments`, `failures` or `incidents`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "deployments" => Ok(Self::Deployments),
            "failures" => Ok(Self::Failures),
            "incidents" => Ok(Self::Incidents),
            other => Err(format!(
                "{other:?} is not a table: send deployments, failures or incidents"
            )),
        }
    }
}

/// One table of an explanation (the deployments when `None`), and its file name.
pub fn explanation(
    explanation: &shiplog_domain::dora::Explanation,
    table: Option<Table>,
) -> (Result<Vec<u8>, csv::Error>, &'static str) {
    match table.unwrap_or(Table::Deployments) {
        Table::Deployments => (
            explained(&explanation.deployments.iter().collect::<Vec<_>>()),
            "dora-deployments.csv",
        ),
        Table::Failures => (failures(&explanation.failures), "dora-failures.csv"),
        Table::Incidents => (incidents(&explanation.incidents), "dora-incidents.csv"),
    }
}

/// The columns of the failures behind the recovery time.
pub const FAILURE_COLUMNS: [&str; 4] = [
    "first_failure",
    "started_at",
    "recovered_by",
    "recovery_seconds",
];

/// The failures (runs of failed deployments) behind the recovery time, one row each.
pub fn failures(rows: &[ExplainedFailure]) -> Result<Vec<u8>, csv::Error> {
    table(
        &FAILURE_COLUMNS,
        rows.iter().map(|f| {
            vec![
                f.first_failure.clone(),
                f.started_at.to_rfc3339(),
                f.recovered_by.clone().unwrap_or_default(),
                number(f.recovery_seconds),
            ]
        }),
    )
}

/// The columns of the incidents behind DORA figures.
pub const INCIDENT_COLUMNS: [&str; 7] = [
    "id",
    "title",
    "opened_at",
    "resolved_at",
    "in_recovery_time",
    "recovery_seconds",
    "deployments",
];

/// The incidents behind DORA figures, one row each (linked deployments by id, space-separated).
pub fn incidents(rows: &[ExplainedIncident]) -> Result<Vec<u8>, csv::Error> {
    table(
        &INCIDENT_COLUMNS,
        rows.iter().map(|i| {
            vec![
                i.id.clone(),
                i.title.clone(),
                i.opened_at.to_rfc3339(),
                time(i.resolved_at),
                i.in_recovery_time.to_string(),
                number(i.recovery_seconds),
                i.deployments
                    .iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        }),
    )
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
