//! Hivel-compatible `POST /api/hooks/v2/deployment` (one `completed` event per deployment).
//!
//! The key comes in `X-API-Token` (or any other accepted header). `deployment_id` is an
//! exclusive idempotency key: the same payload again answers 200 with the same record, another
//! payload under the same id 409. The project is the key's own when the key is limited to one,
//! else the project whose application registered `repo_url`. `pr_number` and `pr_numbers`
//! become references. Answers in Hivel's shapes: `{message, deployment_id, success}` and
//! `{message: "Validation failed", error}`.

use crate::openapi::schemas::{HivelAccepted, HivelError};
use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Deserialize;
use shiplog_app::error::{AppError, ErrorKind};
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::model::DeploymentFields;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, IdempotencyKey};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

use crate::HttpState;
use crate::access::Caller;
use crate::errors::status;
use crate::payload::RawBody;

/// A number sent as a JSON number or as a numeric string (`71` or `"71"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Text(t) => t.trim().trim_start_matches('#').parse().ok(),
        }
    }
}

/// Text that pipelines may send as a number (`build_number: 12345`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Text {
    String(String),
    Number(serde_json::Number),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Self::String(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

/// The body; every field optional here so that a missing one gets Hivel's own message.
/// Required by Hivel: `deployment_id`, `event_type`, `status`, `start_time`, `end_time`,
/// `repo_url`, `environment`. Times are RFC 3339 or Unix epoch milliseconds.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = HivelDeployment)]
pub(crate) struct Body {
    /// The idempotency key: the same payload again answers the same record, a different payload
    /// under the same id answers 409.
    #[schema(value_type = Option<String>)]
    deployment_id: Option<Text>,
    /// `deployment`.
    event_type: Option<String>,
    /// `success`, `failure`, `in_progress`, `cancelled`, …
    status: Option<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    start_time: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    end_time: Option<Timestamp>,
    repo_url: Option<String>,
    environment: Option<String>,
    branch: Option<String>,
    commit_hash: Option<String>,
    /// shiplog's extension: when the commit was made, for lead time (without it, only an
    /// earlier pipeline event of the commit dates it).
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    commit_timestamp: Option<Timestamp>,
    /// A pull request number (number or numeric string).
    #[schema(value_type = Option<u64>)]
    pr_number: Option<Number>,
    /// Several pull request numbers.
    #[schema(value_type = Option<Vec<u64>>)]
    pr_numbers: Option<Vec<Number>>,
    #[schema(value_type = Option<String>)]
    build_number: Option<Text>,
    image: Option<String>,
    logs_url: Option<String>,
}

fn validation(message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(HivelError {
        message: "Validation failed",
        error: message.into(),
        code: None,
    })
}

/// An error in Hivel's shape.
pub(crate) fn refuse(error: &AppError) -> HttpResponse {
    crate::logging::internal(error);
    let kind = error.code().kind();
    let message = match kind {
        ErrorKind::InvalidInput => "Validation failed",
        ErrorKind::Unauthenticated => "Unauthorized",
        ErrorKind::Forbidden | ErrorKind::LimitReached => "Forbidden",
        ErrorKind::NotFound => "Not found",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Unavailable => "Unavailable",
    };
    crate::errors::refusal(status(kind)).json(HivelError {
        message,
        error: error.to_string(),
        code: Some(error.code().as_str().to_owned()),
    })
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("{field} is required"))
}

fn present(value: Option<String>, field: &str) -> Result<String, String> {
    required(
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
        field,
    )
}

/// The command, or the validation message.
fn command(body: Body) -> Result<(IngestCommand, String), String> {
    let deployment_id = present(body.deployment_id.map(Text::into_string), "deployment_id")?;
    let event_type = present(body.event_type, "event_type")?;
    if !event_type.eq_ignore_ascii_case("completed") {
        return Err(format!(
            "event_type must be \"completed\", not {event_type:?}"
        ));
    }
    let raw_status = present(body.status, "status")?;
    let start = required(body.start_time, "start_time")?;
    let end = required(body.end_time, "end_time")?;
    if start > end {
        return Err("Start time cannot be after end time".to_owned());
    }
    let repo = RepoIdentity::parse(&present(body.repo_url, "repo_url")?)
        .map_err(|e| format!("repo_url: {e}"))?;
    let environment = present(body.environment, "environment")?;
    let branch = present(body.branch, "branch")?;
    let key = IdempotencyKey::parse(&deployment_id).map_err(|e| format!("deployment_id: {e}"))?;
    let commit = body
        .commit_hash
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map(|h| CommitSha::parse(&h).map_err(|e| format!("commit_hash: {e}")))
        .transpose()?;
    let mut pull_requests = Vec::new();
    for (field, number) in body
        .pr_number
        .iter()
        .map(|n| ("pr_number", n))
        .chain(body.pr_numbers.iter().flatten().map(|n| ("pr_numbers", n)))
    {
        let value = number
            .value()
            .ok_or_else(|| format!("{field}: send pull-request numbers, like 71"))?;
        if !pull_requests.contains(&value) {
            pull_requests.push(value);
        }
    }

    let mut command = IngestCommand::new(
        PipelineEvent::DEPLOY_COMPLETED,
        Provider::Custom,
        ApplicationRef::Repo(repo),
    );
    command.environment = Some(EnvironmentRef {
        name: environment,
        create_if_missing: true,
        kind: None,
    });
    command.status = Some(raw_status);
    command.terminal_only = true;
    command.correlation = Correlation::Explicit {
        key,
        exclusive: true,
    };
    command.started_at = Some(start);
    command.finished_at = Some(end);
    command.pull_requests = pull_requests;
    command.fields = DeploymentFields {
        external_id: Some(deployment_id.clone()),
        commit_sha: commit,
        commit_timestamp: body.commit_timestamp,
        branch: Some(branch),
        build_number: body.build_number.map(Text::into_string),
        image: body.image,
        logs_url: body.logs_url,
        ..DeploymentFields::default()
    };
    Ok((command, deployment_id))
}

/// `POST /api/hooks/v2/deployment`.
#[utoipa::path(post, path = "/api/hooks/v2/deployment", tag = "hivel",
    request_body = Body,
    responses(
        (status = 200, description = "Stored (the same payload again answers the same)", body = crate::openapi::schemas::HivelAccepted),
        (status = 400, description = "Validation failed: a missing field named, or `Start time cannot be after end time`", body = crate::openapi::schemas::HivelError),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::HivelError),
        (status = 409, description = "The deployment_id was used for a different payload", body = crate::openapi::schemas::HivelError),
        (status = 413, description = "Body over 1 MiB"),
    ),
    security(("hivel_token" = []), ("bearer" = [])))]
pub async fn ingest(
    state: Data<HttpState>,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    let body: Body = match crate::json::parse(&bytes) {
        Ok(body) => body,
        Err(message) => return validation(message),
    };
    let (command, deployment_id) = match command(body) {
        Ok(parsed) => parsed,
        Err(message) => return validation(message),
    };
    match state.app.ingest(&principal, command).await {
        Ok(receipt) => {
            state
                .metrics
                .event("hivel", PipelineEvent::DEPLOY_COMPLETED, receipt.status);
            HttpResponse::Ok().json(HivelAccepted {
                message: "Deployment event stored successfully",
                deployment_id,
                success: true,
            })
        }
        Err(e) => refuse(&e),
    }
}
