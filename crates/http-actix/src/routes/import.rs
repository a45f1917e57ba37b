//! `POST /api/v1/import`: history as newline-delimited JSON, one deployment per line.
//!
//! The body is read as it arrives, never whole: lines are cut at each `\n`, read into records
//! and handed to `App::import` in batches of [`BATCH`], so a stream of any length holds at most
//! one batch and one line ([`MAX_LINE_BYTES`]) in memory, and the sender is slowed to the
//! store's pace. A client that stops sending for [`IDLE_TIMEOUT`] is answered 408; what was
//! committed before stays, and sending the file again is harmless (the import is idempotent).
//! The answer comes once every batch is durably committed.

use std::time::Duration;

use actix_web::web::{Data, Payload, Query};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use shiplog_app::auth::Principal;
use shiplog_app::error::AppError;
use shiplog_app::import::{ImportLine, ImportOutcome, ImportRecord, PlannedImport};
use shiplog_domain::timestamp::Timestamp;

use super::Reply;
use crate::HttpState;
use crate::access::Caller;
use crate::errors::ApiError;

/// Records per batch: one store transaction each.
pub const BATCH: usize = 1000;
/// The longest line read; a longer one is refused by its number.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// How long the body may pause.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The media types read: NDJSON's and JSON Lines'.
const MEDIA_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
];

/// One line of an import: one deployment.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ImportRecord)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportLineBody {
    /// The project (slug); a project-scoped key's own by default.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
    /// The application's code or name (a name becomes a code: `My App` → `my-app`).
    #[schema(min_length = 1, max_length = 200)]
    application: String,
    /// The environment's code or name; created on first use.
    #[schema(min_length = 1, max_length = 200)]
    environment: String,
    /// The outcome in any provider's words (`success`, `failure`, `error`, `canceled`…),
    /// normalized as everywhere in shiplog.
    #[schema(min_length = 1, max_length = 200)]
    status: String,
    /// Whose words `status` is in (`github`, `gitlab`, `jenkins`, `circleci`, `azure`…); none:
    /// shiplog's own words.
    provider: Option<String>,
    /// When it started (RFC 3339 or Unix seconds/milliseconds).
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    started_at: Option<Timestamp>,
    /// When it finished.
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    finished_at: Option<Timestamp>,
    /// The deployed commit (7 to 64 hex digits).
    #[schema(pattern = "^[0-9a-fA-F]{7,64}$")]
    commit_sha: Option<String>,
    /// When that commit was made: where its lead time starts at the latest.
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    commit_timestamp: Option<Timestamp>,
    /// The Git ref (`refs/heads/main`).
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// The branch (from `ref` when it names one).
    branch: Option<String>,
    /// The commit message; the change requests it names are linked.
    commit_message: Option<String>,
    /// The run's or deployment's address.
    url: Option<String>,
    /// Who deployed.
    deployed_by: Option<String>,
    /// The version or build number.
    version: Option<String>,
    /// The deployment's id where it comes from: the same id again is the same deployment.
    external_id: Option<String>,
    /// The live channel that reports the same deployment, so both are one:
    /// `github-deployment`, `github-run`, `gitlab-deployment` or `gitlab-job`.
    #[schema(pattern = "^(github-deployment|github-run|gitlab-deployment|gitlab-job)$")]
    source: Option<String>,
    /// With `source`: the repository (`owner/name`) or GitLab project path.
    repository: Option<String>,
    /// With `source` `github-run`: the run's attempt (default 1).
    run_attempt: Option<u32>,
    /// A hotfix or rollback.
    #[serde(default)]
    rework: bool,
}

impl From<ImportLineBody> for ImportRecord {
    fn from(line: ImportLineBody) -> Self {
        Self {
            project: line.project,
            application: Some(line.application),
            environment: Some(line.environment),
            status: Some(line.status),
            provider: line.provider,
            started_at: line.started_at,
            finished_at: line.finished_at,
            commit_sha: line.commit_sha,
            commit_timestamp: line.commit_timestamp,
            git_ref: line.git_ref,
            branch: line.branch,
            commit_message: line.commit_message,
            url: line.url,
            deployed_by: line.deployed_by,
            version: line.version,
            external_id: line.external_id,
            source: line.source,
            repository: line.repository,
            run_attempt: line.run_attempt,
            rework: line.rework,
        }
    }
}

/// A refused line.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RejectedLineBody {
    /// Its number, from 1.
    line: u64,
    /// The stable error code.
    code: &'static str,
    /// What is wrong and what to send.
    error: String,
}

/// What an import did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ImportResult)]
pub(crate) struct ImportResultBody {
    /// Records written: a new deployment, or news of a known one.
    accepted: u64,
    /// Records already recorded with the same content: nothing written.
    duplicates: u64,
    /// How many lines were refused.
    rejected_count: u64,
    /// The first 1,000 refused lines, by number; nothing of them was stored.
    rejected: Vec<RejectedLineBody>,
}

impl From<ImportOutcome> for ImportResultBody {
    fn from(outcome: ImportOutcome) -> Self {
        Self {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            rejected_count: outcome.rejected_count,
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| RejectedLineBody {
                    line: r.line,
                    code: r.code,
                    error: r.error,
                })
                .collect(),
        }
    }
}

/// `?project=`: the project of the lines that name none.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The project (slug) of every line that names none; default: the key's own project.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    project: Option<String>,
}

/// One line's record, or why it cannot be read; `project` fills in a line's missing project.
fn read_line(line: &[u8], project: Option<&str>) -> Result<ImportRecord, AppError> {
    if line.first() != Some(&b'{') {
        return Err(AppError::invalid(
            "line",
            "is not a JSON object: send one deployment per line, like {\"application\": \"web\", …}",
        ));
    }
    let mut record = crate::json::parse::<ImportLineBody>(line)
        .map(ImportRecord::from)
        .map_err(|message| AppError::invalid("line", message))?;
    if record.project.is_none() {
        record.project = project.map(str::to_owned);
    }
    Ok(record)
}

/// Cuts a byte stream into lines, remembering a partial one between chunks; a line longer
/// than [`MAX_LINE_BYTES`] is dropped as it streams and reported by its number.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    number: u64,
    too_long: bool,
    project: Option<String>,
}

impl Lines {
    /// Feeds a chunk; each complete line's number and reading goes to `out` (blank lines are
    /// skipped but counted).
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ImportLine>) {
        let mut pieces = chunk.split(|b| *b == b'\n');
        let last = pieces.next_back().unwrap_or_default();
        for line in pieces {
            self.take(line);
            self.finish(out);
        }
        self.take(last);
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.too_long {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_LINE_BYTES {
            self.too_long = true;
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// Ends the current line.
    fn finish(&mut self, out: &mut Vec<ImportLine>) {
        self.number += 1;
        let line = std::mem::take(&mut self.partial);
        if std::mem::take(&mut self.too_long) {
            out.push((
                self.number,
                Err(AppError::invalid(
                    "line",
                    format!("is longer than {MAX_LINE_BYTES} bytes: shorten its commit message"),
                )),
            ));
            return;
        }
        let text = line.trim_ascii();
        if !text.is_empty() {
            out.push((self.number, read_line(text, self.project.as_deref())));
        }
    }

    /// Ends the stream: a last line without its `\n` counts.
    fn end(&mut self, out: &mut Vec<ImportLine>) {
        if !self.partial.is_empty() || self.too_long {
            self.finish(out);
        }
    }
}

/// A batch being written by a task of its own.
struct Writing(actix_web::rt::task::JoinHandle<Result<ImportOutcome, AppError>>);

impl Writing {
    fn start(state: &HttpState, caller: &Principal, planned: PlannedImport) -> Self {
        let (app, caller) = (state.app.clone(), caller.clone());
        Self(actix_web::rt::spawn(async move {
            app.write_import(&caller, planned).await
        }))
    }

    async fn finish(self) -> Result<ImportOutcome, AppError> {
        self.0.await.map_err(|error| {
            AppError::from(shiplog_app::ports::BackendFailure::unavailable(format!(
                "an import batch's write stopped: {error}"
            )))
        })?
    }
}

/// `POST /api/v1/import?project=` (ingest or admin key): past deployments as NDJSON, one per
/// line →
/// `{accepted, duplicates, rejected_count, rejected: [{line, code, error}]}`.
#[utoipa::path(post, path = "/api/v1/import", tag = "import",
    params(ImportQuery),
    request_body(content = ImportLineBody, content_type = "application/x-ndjson",
        description = "One JSON object per line, each a deployment; any number of lines."),
    responses(
        (status = 200, description = "Every accepted line is durably stored; refused lines are listed by number and nothing of them was stored", body = ImportResultBody),
        (status = 400, description = "The body broke off unreadable; the batches before it are stored", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "A read key", body = crate::openapi::schemas::ErrorBody),
        (status = 408, description = "The body paused for 30 seconds; what was answered before is stored", body = crate::openapi::schemas::ErrorBody),
        (status = 415, description = "A body said to be something else than NDJSON (none: read as NDJSON)", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn import(
    state: Data<HttpState>,
    Caller(caller): Caller,
    request: HttpRequest,
    query: Query<ImportQuery>,
    mut payload: Payload,
) -> Reply {
    let media = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // A body without a media type is read as NDJSON; one that says it is something else is
    // refused before it is read.
    if !media.is_empty() && !MEDIA_TYPES.contains(&media.as_str()) {
        return Err(ApiError::unsupported_media_type(format!(
            "send the records as newline-delimited JSON with Content-Type: application/x-ndjson (got {media})"
        )));
    }
    // Refuse a read key before reading any of the body.
    state.app.may_import(&caller)?;
    let mut outcome = ImportOutcome::default();
    let mut lines = Lines {
        project: query.into_inner().project,
        ..Lines::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    // Batches are written by tasks of their own while the next is read and planned: as many
    // at once as the store runs side by side.
    let mut writing: std::collections::VecDeque<Writing> = std::collections::VecDeque::new();
    let at_once = state.app.import_writes();
    loop {
        let chunk = match actix_web::rt::time::timeout(IDLE_TIMEOUT, payload.next()).await {
            Err(_) => {
                return Err(ApiError::body_timeout(format!(
                    "the body paused for {} seconds after line {}: the lines answered before are stored; send the rest again (the import is idempotent)",
                    IDLE_TIMEOUT.as_secs(),
                    lines.number
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(ApiError::from(AppError::invalid(
                    "body",
                    format!("cannot be read after line {} ({error})", lines.number),
                )));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        lines.feed(&chunk, &mut batch);
        if batch.len() >= BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let planned = state.app.plan_import(&caller, full, &mut outcome).await?;
            if writing.len() >= at_once
                && let Some(oldest) = writing.pop_front()
            {
                outcome.merge(oldest.finish().await?);
            }
            writing.push_back(Writing::start(&state, &caller, planned));
        }
    }
    lines.end(&mut batch);
    let planned = state.app.plan_import(&caller, batch, &mut outcome).await?;
    writing.push_back(Writing::start(&state, &caller, planned));
    while let Some(oldest) = writing.pop_front() {
        outcome.merge(oldest.finish().await?);
    }
    if outcome.accepted > 0 {
        state.app.import_ended(&caller);
    }
    Ok(HttpResponse::Ok().json(ImportResultBody::from(outcome)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<(u64, Result<ImportRecord, String>)> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.feed(chunk, &mut out);
        }
        lines.end(&mut out);
        out.into_iter()
            .map(|(n, r)| (n, r.map_err(|e| e.to_string())))
            .collect()
    }

    #[test]
    fn lines_are_cut_across_chunks_and_numbered() {
        let record = br#"{"application":"web","environment":"production","status":"success"}"#;
        let mut body = Vec::new();
        body.extend_from_slice(record);
        body.extend_from_slice(b"\n\n   \r\n");
        body.extend_from_slice(record);
        body.extend_from_slice(b"\r\n[1]\n");
        body.extend_from_slice(record);
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let out = cut(&[a, b]);
            let numbers: Vec<u64> = out.iter().map(|(n, _)| *n).collect();
            assert_eq!(numbers, [1, 4, 5, 6], "split at {split}");
            assert!(out[0].1.is_ok() && out[1].1.is_ok() && out[3].1.is_ok());
            assert!(out[2].1.as_ref().unwrap_err().contains("not a JSON object"));
        }
    }

    #[test]
    fn a_bad_line_names_its_field_and_a_long_one_is_dropped() {
        let out =
            cut(&[br#"{"application":"web","environment":"p","status":"ok","finshed_at":"x"}"#]);
        let error = out[0].1.as_ref().unwrap_err();
        assert!(error.contains("finshed_at"), "{error}");
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let out = cut(&[&long[..100], &long[100..], b"\n{}"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].1.as_ref().unwrap_err().contains("longer than"));
        assert!(
            out[1].1.as_ref().unwrap_err().contains("application"),
            "{:?}",
            out[1]
        );
    }
}
