//! Envtracker-compatible signed endpoints.
//!
//! Every request carries `X-Webhook-Key`, `X-Webhook-Timestamp` and `X-Webhook-Signature`
//! (`sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, several allowed). Status codes
//! follow the vendor document: 200 done; 400 invalid payload, and also an environment or
//! application that notify names but that does not exist (the message says how to create it);
//! 401 with the reason (missing headers, invalid signature, expired timestamp, unknown key);
//! 403 when a project or team does not exist, an environment code exists, or the workspace's
//! environment limit is reached.

use crate::openapi::schemas::{Assigned, CompatError, EnvironmentCreated, NotifyAccepted};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shiplog_app::auth::Principal;
use shiplog_app::environments::{AppAssignment, AssignApplications, CreateEnvironment};
use shiplog_app::error::{AppError, ErrorCode};
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::model::{DeploymentFields, ProjectLookup};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{
    ApplicationCode, EnvironmentCode, IdempotencyKey, TeamCode, WorkspaceCode,
};
use shiplog_domain::status::{Provider, normalize};
use shiplog_domain::timestamp::Timestamp;

use crate::HttpState;
use crate::access::Signed;
use crate::errors::status;
use crate::payload::RawBody;

/// This API's status for each error code: the document's 403s and 400s over the shared table.
fn envtracker_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ProjectNotFound
        | ErrorCode::TeamNotFound
        | ErrorCode::WorkspaceNotFound
        | ErrorCode::EnvironmentExists
        | ErrorCode::EnvironmentLimitReached => StatusCode::FORBIDDEN,
        ErrorCode::EnvironmentNotFound | ErrorCode::ApplicationNotFound => StatusCode::BAD_REQUEST,
        other => status(other.kind()),
    }
}

/// Why a request was refused, before it becomes a response.
enum Refusal {
    App(AppError),
    Invalid(String),
}

impl From<AppError> for Refusal {
    fn from(error: AppError) -> Self {
        Self::App(error)
    }
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Self::App(error) => {
                crate::logging::internal(&error);
                crate::errors::refusal(envtracker_status(error.code())).json(CompatError {
                    error: error.to_string(),
                    code: error.code().as_str().to_owned(),
                })
            }
            Self::Invalid(message) => HttpResponse::BadRequest().json(CompatError {
                error: message,
                code: "invalid_payload".to_owned(),
            }),
        }
    }
}

/// A use case's refusal in this API's shape.
pub(crate) fn refuse(error: &AppError) -> HttpResponse {
    Refusal::App(error.clone()).response()
}

/// Runs a handler body and renders its refusal.
fn answer(result: Result<HttpResponse, Refusal>) -> HttpResponse {
    result.unwrap_or_else(Refusal::response)
}

/// Checks the signature over the raw body (the key was found from the headers before the body
/// was read, see [`crate::access`]), then parses it.
async fn signed<T: DeserializeOwned>(
    state: &HttpState,
    headers: Signed,
    bytes: &Bytes,
) -> Result<(Principal, T), Refusal> {
    let principal = headers.verify(state, bytes).await?;
    let body = crate::json::parse(bytes).map_err(Refusal::Invalid)?;
    Ok((principal, body))
}

fn code<T, E: std::fmt::Display>(field: &str, parsed: Result<T, E>) -> Result<T, Refusal> {
    parsed.map_err(|e| Refusal::Invalid(format!("{field}: {e}")))
}

/// Builds the notify command shared by the current and the legacy path.
#[allow(clippy::too_many_arguments)]
fn notify_command(
    project: &str,
    environment: &str,
    application: &str,
    pipeline: Option<&serde_json::Value>,
    status_word: Option<String>,
    branch: Option<String>,
    deploy_date: Option<Timestamp>,
) -> Result<IngestCommand, Refusal> {
    let project = code("projectCode", ProjectLookup::parse(project))?;
    let environment = code("envCode", EnvironmentCode::parse(environment))?;
    let application = code("repoCode", ApplicationCode::parse(application))?;
    let status_word = status_word
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Refusal::Invalid(
                "status is required: send the deployment status, like \"success\"".to_owned(),
            )
        })?;
    let pipeline = match pipeline {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => {
            return Err(Refusal::Invalid(
                "pipeline: send the CI pipeline run number, like 456".to_owned(),
            ));
        }
    };
    let terminal = normalize(Provider::Custom, &status_word).is_terminal();
    let mut command = IngestCommand::new(
        if terminal {
            PipelineEvent::DEPLOY_COMPLETED
        } else {
            PipelineEvent::DEPLOY_STARTED
        },
        Provider::Custom,
        ApplicationRef::Code(application.clone()),
    );
    command.create_application = false;
    command.environment = Some(EnvironmentRef {
        name: environment.to_string(),
        create_if_missing: false,
        kind: None,
    });
    if let Some(run) = &pipeline {
        let key = IdempotencyKey::derived(&[
            "envtracker",
            &format!("{project:?}"),
            environment.as_str(),
            application.as_str(),
            run,
        ]);
        command.correlation = Correlation::Explicit {
            key,
            exclusive: false,
        };
    }
    command.project = Some(project);
    command.status = Some(status_word);
    command.fields = DeploymentFields {
        external_id: pipeline,
        branch,
        ..DeploymentFields::default()
    };
    if terminal {
        command.finished_at = deploy_date;
    } else {
        command.started_at = deploy_date;
    }
    Ok(command)
}

async fn record(
    state: &HttpState,
    principal: &Principal,
    command: IngestCommand,
) -> Result<HttpResponse, Refusal> {
    let event = command.event;
    let receipt = state.app.ingest(principal, command).await?;
    state.metrics.event("envtracker", event, receipt.status);
    Ok(HttpResponse::Ok().json(NotifyAccepted {
        success: true,
        deployment_id: receipt.deployment,
        status: receipt.status,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerNotify)]
pub(crate) struct Notify {
    project_code: String,
    env_code: String,
    repo_code: String,
    /// The pipeline or run number (number or string).
    #[schema(value_type = Option<String>)]
    pipeline: Option<serde_json::Value>,
    status: Option<String>,
    branch: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    deploy_date: Option<Timestamp>,
}

/// `PUT /webhook/notify`.
#[utoipa::path(put, path = "/webhook/notify", tag = "envtracker",
    request_body = Notify,
    responses(
        (status = 200, description = "Recorded", body = crate::openapi::schemas::NotifyAccepted),
        (status = 400, description = "Bad field, or the environment or application does not exist (named, with how to create it)", body = crate::openapi::schemas::CompatError),
        (status = 403, description = "The project does not exist or the key may not write it", body = crate::openapi::schemas::CompatError),
    ),
    security(("webhook_signature" = [])))]
pub async fn notify(
    state: Data<HttpState>,
    headers: Signed,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    answer(
        async {
            let (principal, body): (Principal, Notify) = signed(&state, headers, &bytes).await?;
            let command = notify_command(
                &body.project_code,
                &body.env_code,
                &body.repo_code,
                body.pipeline.as_ref(),
                body.status,
                body.branch,
                body.deploy_date,
            )?;
            record(&state, &principal, command).await
        }
        .await,
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerGitTracking)]
pub(crate) struct GitTracking {
    branch: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerLegacyNotify)]
pub(crate) struct LegacyNotify {
    /// The pipeline or run number (number or string).
    #[schema(value_type = Option<String>)]
    pipeline: Option<serde_json::Value>,
    status: Option<String>,
    git_tracking: Option<GitTracking>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "crate::json::blank_is_none")]
    deploy_date: Option<Timestamp>,
}

/// `PUT /v1/company/{companyCode}/project/{projectCode}/applications/{appCode}/env/{envCode}`:
/// deprecated, answers like notify with `Deprecation` and a `Link` to the successor.
#[utoipa::path(put,
    path = "/v1/company/{company}/project/{project}/applications/{application}/env/{environment}",
    tag = "envtracker",
    params(
        ("company" = String, Path, description = "The workspace code (must be the signing key's)"),
        ("project" = String, Path, description = "The project slug"),
        ("application" = String, Path, description = "The application code"),
        ("environment" = String, Path, description = "The environment code"),
    ),
    request_body = LegacyNotify,
    responses(
        (status = 200, description = "Recorded; with `Deprecation: true` and `Link: </webhook/notify>; rel=\"successor-version\"`", body = crate::openapi::schemas::NotifyAccepted),
        (status = 400, description = "Bad field, or the environment or application does not exist", body = crate::openapi::schemas::CompatError),
        (status = 403, description = "Another workspace's company, or an unknown project", body = crate::openapi::schemas::CompatError),
    ),
    security(("webhook_signature" = [])))]
#[deprecated = "use PUT /webhook/notify"]
pub async fn legacy_notify(
    state: Data<HttpState>,
    headers: Signed,
    path: Path<(String, String, String, String)>,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    let (company, project, application, environment) = path.into_inner();
    let mut response = answer(
        async {
            let (principal, body): (Principal, LegacyNotify) =
                signed(&state, headers, &bytes).await?;
            let company = code("companyCode", WorkspaceCode::parse(&company))?;
            // The company in the path must be the signing key's own workspace.
            state
                .app
                .require_own_workspace(&principal, &company)
                .await?;
            let command = notify_command(
                &project,
                &environment,
                &application,
                body.pipeline.as_ref(),
                body.status,
                body.git_tracking.and_then(|g| g.branch),
                body.deploy_date,
            )?;
            record(&state, &principal, command).await
        }
        .await,
    );
    let headers = response.headers_mut();
    headers.insert(
        actix_web::http::header::HeaderName::from_static("deprecation"),
        actix_web::http::header::HeaderValue::from_static("true"),
    );
    headers.insert(
        actix_web::http::header::LINK,
        actix_web::http::header::HeaderValue::from_static(
            "</webhook/notify>; rel=\"successor-version\"",
        ),
    );
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerNewEnvironment)]
pub(crate) struct NewEnvironment {
    name: String,
    code: String,
    team_code: String,
    url: Option<String>,
    position: Option<i32>,
    #[serde(rename = "type")]
    kind: String,
}

/// `PUT /webhook/create-environment`.
#[utoipa::path(put, path = "/webhook/create-environment", tag = "envtracker",
    request_body = NewEnvironment,
    responses(
        (status = 200, description = "Created", body = crate::openapi::schemas::EnvironmentCreated),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::CompatError),
        (status = 403, description = "The team does not exist, the workspace already has an environment of this code, or the workspace's environment limit is reached", body = crate::openapi::schemas::CompatError),
    ),
    security(("webhook_signature" = [])))]
pub async fn create_environment(
    state: Data<HttpState>,
    headers: Signed,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    answer(
        async {
            let (principal, body): (Principal, NewEnvironment) =
                signed(&state, headers, &bytes).await?;
            let create = CreateEnvironment {
                name: body.name,
                code: code("code", EnvironmentCode::parse(&body.code))?,
                team: code("teamCode", TeamCode::parse(&body.team_code))?,
                url: body.url,
                position: body.position,
                kind: code("type", EnvironmentKind::parse(&body.kind))?,
            };
            let environment = state.app.create_environment(&principal, create).await?;
            Ok(HttpResponse::Ok().json(EnvironmentCreated {
                success: true,
                code: environment.code,
                name: environment.name,
                kind: environment.kind.as_str().to_uppercase(),
                position: environment.position,
            }))
        }
        .await,
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerAppEntry)]
pub(crate) struct AppEntry {
    repo_code: String,
    envs: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EnvtrackerAssign)]
pub(crate) struct Assign {
    project_code: String,
    apps: Vec<AppEntry>,
}

/// `PUT /webhook/assign-apps`.
#[utoipa::path(put, path = "/webhook/assign-apps", tag = "envtracker",
    request_body = Assign,
    responses(
        (status = 200, description = "Assigned, all or nothing; applications are created when missing", body = crate::openapi::schemas::Assigned),
        (status = 400, description = "A bad field, named", body = crate::openapi::schemas::CompatError),
        (status = 403, description = "The project or an environment does not exist", body = crate::openapi::schemas::CompatError),
    ),
    security(("webhook_signature" = [])))]
pub async fn assign_apps(
    state: Data<HttpState>,
    headers: Signed,
    RawBody(bytes): RawBody,
) -> HttpResponse {
    answer(
        async {
            let (principal, body): (Principal, Assign) = signed(&state, headers, &bytes).await?;
            let project = code("projectCode", ProjectLookup::parse(&body.project_code))?;
            let mut apps = Vec::with_capacity(body.apps.len());
            for entry in &body.apps {
                let mut environments = Vec::with_capacity(entry.envs.len());
                for env in &entry.envs {
                    environments.push(code("apps[].envs", EnvironmentCode::parse(env))?);
                }
                apps.push(AppAssignment {
                    application: code("apps[].repoCode", ApplicationCode::parse(&entry.repo_code))?,
                    environments,
                });
            }
            match state
                .app
                .assign_applications(&principal, AssignApplications { project, apps })
                .await
            {
                Ok(added) => Ok(HttpResponse::Ok().json(Assigned {
                    success: true,
                    assigned: added,
                })),
                // Assignments name environments that must exist: the document's 403.
                Err(error @ AppError::EnvironmentNotFound(_)) => Ok(HttpResponse::Forbidden()
                    .json(CompatError {
                        error: error.to_string(),
                        code: error.code().as_str().to_owned(),
                    })),
                Err(error) => Err(error.into()),
            }
        }
        .await,
    )
}
