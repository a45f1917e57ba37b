//! Clienwork-compatible `POST /api/webhooks/ci`.
//!
//! Accepts the documented body (`event`, `project_id` or `project_slug`, `status`, `ref`,
//! `commit_sha`, `commit_message`, `environment`, `url`) plus shiplog's optional extras
//! (`application`, `repo_url`, `deployed_by`, `started_at`, `finished_at`, `commit_timestamp`,
//! or GitHub's `head_commit.timestamp`, `rework`),
//! the provider in `X-CI-Provider`, and the key in any of the three documented headers.
//! Answers in Clienwork's shapes: `{success, deployment_id, linked_requests, message}`, and for a
//! bad event `{error, valid_events}`; other errors are `{error, code}` with the status of the
//! shared table.

use crate::openapi::schemas::{ClienworkAccepted, ClienworkInvalidEvent, CompatError};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use shiplog_app::error::AppError;
use shiplog_app::ingest::{ApplicationRef, EnvironmentRef, IngestCommand};
use shiplog_app::model::{DeploymentFields, ProjectLookup};
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{ApplicationCode, CommitSha};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

use crate::HttpState;
use crate::access::Caller;
use crate::errors::status;
use crate::payload::RawBody;

/// The request body. Unknown fields are ignored, as pipelines send more than they must.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ClienworkEvent)]
pub(crate) struct Body {
    /// `build.started`, `build.completed`, `test.started`, `test.completed`, `deploy.started` or
    /// `deploy.completed`.
    event: String,
    /// The project's id or slug (or send `project_slug`).
    project_id: Option<String>,
    project_slug: Option<String>,
    status: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// shiplog's extension: the branch, when `ref` does not say it (`refs/heads/<branch>` does;
    /// GitLab's `CI_COMMIT_REF_NAME` does not).
    branch: Option<String>,
    commit_sha: Option<String>,
    commit_message: Option<String>,
    environment: Option<String>,
    url: Option<String>,
    application: Option<String>,
    repo_url: Option<String>,
    deployed_by: Option<String>,
    /// shiplog's extension: the CI's build number (`shiplog notify` sends it).
    build_number: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    finished_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    commit_timestamp: Option<Timestamp>,
    /// GitHub's `head_commit` object, as a workflow can forward it from its event
    /// (`${{ toJSON(github.event.head_commit) }}`): its `timestamp` stands in for
    /// `commit_timestamp`.
    head_commit: Option<HeadCommit>,
    /// shiplog's extension: `true` marks the deployment as rework (a hotfix, a rollback, a fix
    /// of a fix) for DORA's deployment rework rate; a mark is never undone by later events.
    #[serde(default)]
    rework: Option<bool>,
}

/// The part of GitHub's `head_commit` shiplog reads.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = GithubHeadCommit)]
pub(crate) struct HeadCommit {
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    timestamp: Option<Timestamp>,
}

/// An error in Clienwork's shape.
pub(crate) fn refuse(error: &AppError) -> HttpResponse {
    crate::logging::internal(error);
    match error {
        AppError::InvalidEvent(invalid) => HttpResponse::BadRequest().json(ClienworkInvalidEvent {
            error: invalid.to_string(),
            valid_events: Some(invalid.valid_events().to_vec()),
            code: None,
        }),
        other => crate::errors::refusal(status(other.code().kind())).json(CompatError {
            error: other.to_string(),
            code: other.code().as_str().to_owned(),
        }),
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> AppError {
    AppError::invalid(field, message.to_string())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn command(body: Body, provider: Provider) -> Result<IngestCommand, AppError> {
    let event = PipelineEvent::parse(&body.event).map_err(AppError::InvalidEvent)?;
    let application = match (non_empty(body.application), non_empty(body.repo_url)) {
        (Some(code), _) => ApplicationRef::Code(
            ApplicationCode::parse(&code).map_err(|e| invalid("application", e))?,
        ),
        (None, Some(url)) => {
            ApplicationRef::Repo(RepoIdentity::parse(&url).map_err(|e| invalid("repo_url", e))?)
        }
        (None, None) => ApplicationRef::ProjectDefault,
    };
    let mut command = IngestCommand::new(event, provider, application);
    command.project = match (non_empty(body.project_id), non_empty(body.project_slug)) {
        (Some(id), _) => Some(ProjectLookup::parse(&id).map_err(|e| invalid("project_id", e))?),
        (None, Some(slug)) => {
            Some(ProjectLookup::parse(&slug).map_err(|e| invalid("project_slug", e))?)
        }
        (None, None) => None,
    };
    command.environment = non_empty(body.environment).map(|name| EnvironmentRef {
        name,
        create_if_missing: true,
        kind: None,
    });
    command.status = non_empty(body.status);
    command.fields = DeploymentFields {
        commit_sha: non_empty(body.commit_sha)
            .map(|sha| CommitSha::parse(&sha).map_err(|e| invalid("commit_sha", e)))
            .transpose()?,
        commit_message: body.commit_message,
        commit_timestamp: body
            .commit_timestamp
            .or(body.head_commit.and_then(|h| h.timestamp)),
        git_ref: body.git_ref,
        branch: non_empty(body.branch),
        run_url: body.url,
        deployed_by: body.deployed_by,
        build_number: non_empty(body.build_number),
        ..DeploymentFields::default()
    };
    command.started_at = body.started_at;
    command.finished_at = body.finished_at;
    command.rework = body.rework.unwrap_or(false);
    Ok(command)
}

/// `POST /api/webhooks/ci`.
#[utoipa::path(post, path = "/api/webhooks/ci", tag = "clienwork",
    request_body = Body,
    params(("X-CI-Provider" = Option<String>, Header,
        description = "The CI system: github-actions, gitlab-ci, jenkins, circleci, azure-devops, bitbucket-pipelines, argo, …")),
    responses(
        (status = 200, description = "Recorded (a duplicate answers the first result)", body = crate::openapi::schemas::ClienworkAccepted),
        (status = 400, description = "An unknown event (this body, with valid_events); a malformed body or field answers {error, code}", body = crate::openapi::schemas::ClienworkInvalidEvent),
        (status = 403, description = "The key's role or project does not allow it", body = crate::openapi::schemas::CompatError),
        (status = 404, description = "Unknown project", body = crate::openapi::schemas::CompatError),
        (status = 413, description = "Body over 1 MiB"),
    ),
    security(("bearer" = []), ("clienwork_key" = [])))]
pub async fn ingest(
    state: Data<HttpState>,
    request: HttpRequest,
    Caller(principal): Caller,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    let body: Body = match crate::json::parse(&bytes) {
        Ok(body) => body,
        Err(message) => {
            return HttpResponse::BadRequest().json(CompatError {
                error: message,
                code: "invalid_body".to_owned(),
            });
        }
    };
    let provider = request
        .headers()
        .get("x-ci-provider")
        .and_then(|v| v.to_str().ok())
        .map_or(Provider::Custom, Provider::parse);
    let command = match command(body, provider) {
        Ok(command) => command,
        Err(e) => return refuse(&e),
    };
    let event = command.event;
    match state.app.ingest(&principal, command).await {
        Ok(receipt) => {
            state.metrics.event("clienwork", event, receipt.status);
            let linked: Vec<String> = receipt
                .linked_references
                .iter()
                .map(ToString::to_string)
                .collect();
            HttpResponse::Ok().json(ClienworkAccepted {
                success: true,
                deployment_id: receipt.deployment,
                message: if receipt.references_not_linked == 0 {
                    format!("Processed {event} event. Linked {} request(s).", linked.len())
                } else {
                    format!(
                        "Processed {event} event. Linked {} request(s); {} more were not linked (at most {} per deployment).",
                        linked.len(),
                        receipt.references_not_linked,
                        shiplog_domain::reference::MAX_REFERENCES
                    )
                },
                linked_requests: linked,
                references_not_linked: receipt.references_not_linked,
            })
        }
        Err(e) => refuse(&e),
    }
}
