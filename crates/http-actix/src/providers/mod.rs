//! Providers' own webhook payloads, translated into what shiplog records
//! ([`shiplog_app::integrations::Translation`]). Called only for deliveries already found
//! authentic (`App::receive_integration` checks the signature first).
//!
//! GitHub: `ping` (acknowledged), `deployment` (a deploy started, `pending`) and
//! `deployment_status` (its progress and outcome: GitHub's deployment states go through the
//! GitHub words of `shiplog_domain::status`); every status of one GitHub deployment updates one
//! shiplog deployment, keyed by the repository and GitHub's deployment id. `inactive` (GitHub
//! retiring an older deployment after a newer one) is not an outcome and is ignored.
//! `workflow_run`: a workflow named in the integration's `settings.deploy_workflows`
//! (`{"workflow name": "environment"}`) is a deploy to that environment, any other a build; one
//! run attempt is one deployment or build, and its head commit's message and time come along
//! (where lead time starts). `workflow_job`: a job named in `settings.deploy_jobs` is a deploy
//! to its environment (one job attempt, one deployment); other jobs are ignored, their workflow
//! run already reports the build. Any other event is ignored, with the list of those read.
//!
//! Jenkins (the Notification plugin's JSON: `name`, `build.number`, `build.phase`,
//! `build.status`, `build.full_url`, `build.scm.commit`, `build.scm.branch`, `build.scm.url`):
//! a job named in the integration's `settings.deploy_jobs` (`{"job name": "environment"}`) is a
//! deploy to that environment, any other job a build. `QUEUED`/`STARTED` start it,
//! `COMPLETED` ends it with its status; `FINALIZED` repeats `COMPLETED` and is ignored. One
//! Jenkins build is one shiplog deployment or build, keyed by the job and the build number.
//!
//! Argo CD (the body of the notifications template in `docs/ci/argo.md`: `app`, `revision`,
//! `sync_phase`, `health`, `started_at`, `finished_at`, `repo_url`, `environment`,
//! `commit_timestamp`): the status is sync phase and health combined by
//! `shiplog_domain::status::argo_cd`; one sync operation (the application and the operation's
//! start) is one deployment, so repeated `on-deployed` notifications and a later
//! `on-health-degraded` of the same sync update it instead of adding one.
//!
//! GitLab: `Deployment Hook` (a deployment's status: `created`, `running`, `success`,
//! `failed`, `canceled`, through the GitLab CI words; every status of one GitLab deployment
//! updates one shiplog deployment, keyed by the job that ran it), `Job Hook` (a job that
//! starts an environment is a deployment there, keyed by the job: with both hooks enabled, one
//! record) and `Pipeline Hook` (a pipeline of a commit as a build started or completed, so
//! lead time can start at the commit's first pipeline). An environment created on first use
//! takes its kind from GitLab's tier. Any other event is ignored, with the list of those read.
//!
//! PagerDuty and Opsgenie: incidents opened and resolved (see [`incidents`]).

mod incidents;

use serde_json::Value;
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::{Phase, PipelineEvent, Stage};
use shiplog_domain::ids::{CommitSha, IdempotencyKey};
use shiplog_domain::integration::IntegrationProvider;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{Provider, finished};
use shiplog_domain::timestamp::Timestamp;

/// What a delivery of `provider` says.
pub fn translate(
    provider: IntegrationProvider,
    settings: &Value,
    event: Option<&str>,
    body: &[u8],
) -> Translation {
    match provider {
        IntegrationProvider::Github => github(settings, event, body),
        IntegrationProvider::Gitlab => gitlab(event, body),
        IntegrationProvider::Jenkins => jenkins(settings, body),
        IntegrationProvider::Argocd => argocd(body),
        IntegrationProvider::Pagerduty => incidents::pagerduty(settings, body),
        IntegrationProvider::Opsgenie => incidents::opsgenie(settings, body),
    }
}

/// The GitHub events read.
const GITHUB_EVENTS: &str =
    "ping, deployment, deployment_status, workflow_run, workflow_job, push and pull_request";

/// The most commits one delivery records (GitHub sends at most 2048, GitLab 20).
const MAX_COMMITS: usize = 200;

/// The `id` and `timestamp` of each commit of a push (GitHub's and GitLab's `commits`), or
/// why not; `what` says what they were, for the log.
fn pushed_commits(payload: &Value, what: String) -> Translation {
    let commits: Vec<(CommitSha, Timestamp)> = payload
        .get("commits")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|commit| {
                    let sha = CommitSha::parse(text(commit, &["id"])?).ok()?;
                    let at = text(commit, &["timestamp"]).and_then(gitlab_time)?;
                    Some((sha, at))
                })
                .take(MAX_COMMITS)
                .collect()
        })
        .unwrap_or_default();
    if commits.is_empty() {
        return Translation::Acknowledge(format!(
            "{what}: no commits with a time, nothing to record"
        ));
    }
    Translation::Commits {
        commits,
        request: None,
        reason: what,
    }
}

/// A merged change request: its merge commit and its last commit are known since it was
/// opened, so their deployments' lead time starts there at the latest.
fn merged_commits(
    shas: [Option<&str>; 2],
    opened: Option<Timestamp>,
    request: Option<(ReferenceKey, Option<RepoIdentity>)>,
    what: String,
) -> Translation {
    let Some(opened) = opened else {
        return Translation::Malformed(format!("{what}: its creation time is missing"));
    };
    let mut commits: Vec<(CommitSha, Timestamp)> = shas
        .into_iter()
        .flatten()
        .filter_map(|sha| CommitSha::parse(sha).ok())
        .map(|sha| (sha, opened))
        .collect();
    commits.dedup();
    if commits.is_empty() {
        return Translation::Malformed(format!("{what}: no merge commit"));
    }
    Translation::Commits {
        commits,
        request,
        reason: what,
    }
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What every provider's event becomes: with an `environment`, a deploy there (created on
/// first use), else a build; `completed` ends it, else it starts; `key` names the one record
/// every later status of it updates (none: shiplog derives it from the run).
fn record(
    provider: Provider,
    application: ApplicationRef,
    environment: Option<&str>,
    completed: bool,
    status: String,
    key: Option<&[&str]>,
) -> IngestCommand {
    let stage = if environment.is_some() {
        Stage::Deploy
    } else {
        Stage::Build
    };
    let phase = if completed {
        Phase::Completed
    } else {
        Phase::Started
    };
    let mut command = IngestCommand::new(PipelineEvent { stage, phase }, provider, application);
    command.environment = environment.map(|name| EnvironmentRef {
        name: name.to_owned(),
        create_if_missing: true,
        kind: None,
    });
    command.status = Some(status);
    if let Some(key) = key {
        command.correlation = Correlation::Explicit {
            key: IdempotencyKey::derived(key),
            exclusive: false,
        };
    }
    command
}

/// The body as a JSON object, or why not.
fn object(body: &[u8]) -> Result<Value, Translation> {
    match serde_json::from_slice(body) {
        Ok(payload @ Value::Object(_)) => Ok(payload),
        Ok(_) => Err(Translation::Malformed(
            "the body is not a JSON object".into(),
        )),
        Err(error) => Err(Translation::Malformed(format!(
            "the body is not JSON ({error}): set the webhook's content type to application/json"
        ))),
    }
}

/// The application a repository address names (created on first use), or the project's own
/// when there is none; a malformed address is refused when `strict`, else ignored.
fn application_of(
    payload: &Value,
    path: &[&str],
    strict: bool,
) -> Result<ApplicationRef, Translation> {
    match text(payload, path).map(RepoIdentity::parse) {
        Some(Ok(repo)) => Ok(ApplicationRef::Repo(repo)),
        Some(Err(error)) if strict => Err(Translation::Malformed(format!(
            "{}: {error}",
            path.join(".")
        ))),
        _ => Ok(ApplicationRef::ProjectDefault),
    }
}

fn github(settings: &Value, event: Option<&str>, body: &[u8]) -> Translation {
    let Some(event) = event.map(str::trim).filter(|e| !e.is_empty()) else {
        return Translation::Malformed(
            "no X-GitHub-Event header: send the event name as GitHub does".into(),
        );
    };
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    match event {
        "ping" => Translation::Acknowledge(format!(
            "ping: GitHub reached this integration (hook {})",
            payload
                .get("hook_id")
                .map_or_else(|| "?".to_owned(), Value::to_string)
        )),
        "deployment" => deployment(&payload, None),
        "workflow_run" => workflow_run(settings, &payload),
        "workflow_job" => workflow_job(settings, &payload),
        "push" => {
            let git_ref = text(&payload, &["ref"]).unwrap_or("?");
            if payload.get("deleted").and_then(Value::as_bool) == Some(true) {
                return Translation::Acknowledge(format!(
                    "push deleting {git_ref}: nothing to record"
                ));
            }
            pushed_commits(&payload, format!("push to {git_ref}"))
        }
        "pull_request" => {
            let action = text(&payload, &["action"]).unwrap_or("?");
            let pull = payload.get("pull_request").unwrap_or(&Value::Null);
            let merged = pull.get("merged").and_then(Value::as_bool) == Some(true);
            if action != "closed" || !merged {
                return Translation::Ignore(format!(
                    "pull_request {action}: only a merged pull request is read (closed, merged)"
                ));
            }
            let number = pull
                .get("number")
                .map_or_else(|| "?".to_owned(), Value::to_string);
            merged_commits(
                [
                    text(pull, &["merge_commit_sha"]),
                    text(pull, &["head", "sha"]),
                ],
                text(pull, &["created_at"]).and_then(|t| Timestamp::parse(t).ok()),
                pull.get("number").and_then(Value::as_u64).map(|n| {
                    (
                        ReferenceKey::pull_request(n),
                        text(&payload, &["repository", "html_url"])
                            .and_then(|url| RepoIdentity::parse(url).ok()),
                    )
                }),
                format!(
                    "pull request #{number} merged (its merge and head commits count from its opening)"
                ),
            )
        }
        "deployment_status" => {
            let Some(state) = text(&payload, &["deployment_status", "state"]) else {
                return Translation::Malformed("deployment_status.state is missing".to_owned());
            };
            if state.eq_ignore_ascii_case("inactive") {
                return Translation::Ignore(
                    "deployment_status inactive: GitHub retired an older deployment; not an outcome"
                        .into(),
                );
            }
            deployment(&payload, Some(state))
        }
        other => Translation::Ignore(format!(
            "GitHub event {other:?} is not read; shiplog reads {GITHUB_EVENTS}"
        )),
    }
}

/// A GitHub Actions run's or job's state: whether it completed, and its conclusion if so, else
/// its status (`queued`, `in_progress`, …).
fn actions_status(run: &Value) -> (bool, &str) {
    let completed = text(run, &["status"]) == Some("completed");
    let status = if completed {
        text(run, &["conclusion"]).unwrap_or("completed")
    } else {
        text(run, &["status"]).unwrap_or("queued")
    };
    (completed, status)
}

/// A `workflow_run` payload: a deploy when its workflow is named in `deploy_workflows`, else a
/// build.
fn workflow_run(settings: &Value, payload: &Value) -> Translation {
    let Some(run) = payload.get("workflow_run") else {
        return Translation::Malformed("workflow_run is missing".into());
    };
    let Some(id) = run.get("id").map(Value::to_string) else {
        return Translation::Malformed("workflow_run.id is missing".into());
    };
    let attempt = run
        .get("run_attempt")
        .map_or_else(|| "1".to_owned(), Value::to_string);
    let name = text(run, &["name"])
        .or_else(|| text(payload, &["workflow", "name"]))
        .unwrap_or("");
    let environment = settings
        .get("deploy_workflows")
        .and_then(|workflows| workflows.get(name))
        .and_then(Value::as_str);
    let (completed, status) = actions_status(run);
    let repository = text(payload, &["repository", "full_name"]).unwrap_or("");
    let application = match application_of(payload, &["repository", "html_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let mut command = record(
        Provider::GithubActions,
        application,
        environment,
        completed,
        status.to_owned(),
        Some(&["github-run", repository, &id, &attempt]),
    );
    let time = |path: &[&str]| text(run, path).and_then(|t| Timestamp::parse(t).ok());
    command.started_at = time(&["run_started_at"]).or_else(|| time(&["created_at"]));
    if completed {
        command.finished_at = time(&["updated_at"]);
    }
    let branch = text(run, &["head_branch"]);
    command.fields = DeploymentFields {
        external_id: Some(id),
        commit_sha: text(run, &["head_sha"]).and_then(|s| CommitSha::parse(s).ok()),
        commit_message: text(run, &["head_commit", "message"]).map(str::to_owned),
        commit_timestamp: time(&["head_commit", "timestamp"]),
        git_ref: branch.map(|b| format!("refs/heads/{b}")),
        branch: branch.map(str::to_owned),
        run_url: text(run, &["html_url"]).map(str::to_owned),
        build_number: run.get("run_number").map(Value::to_string),
        deployed_by: text(run, &["actor", "login"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A `workflow_job` payload: a deploy when its job is named in `deploy_jobs`; any other job is
/// ignored (its workflow run reports the build).
fn workflow_job(settings: &Value, payload: &Value) -> Translation {
    let Some(job) = payload.get("workflow_job") else {
        return Translation::Malformed("workflow_job is missing".into());
    };
    let name = text(job, &["name"]).unwrap_or("");
    let Some(environment) = settings
        .get("deploy_jobs")
        .and_then(|jobs| jobs.get(name))
        .and_then(Value::as_str)
    else {
        return Translation::Ignore(format!(
            "job {name:?} is not in settings.deploy_jobs; its workflow_run reports the build"
        ));
    };
    let Some(id) = job.get("id").map(Value::to_string) else {
        return Translation::Malformed("workflow_job.id is missing".into());
    };
    let attempt = job
        .get("run_attempt")
        .map_or_else(|| "1".to_owned(), Value::to_string);
    let (completed, status) = actions_status(job);
    let repository = text(payload, &["repository", "full_name"]).unwrap_or("");
    let application = match application_of(payload, &["repository", "html_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let mut command = record(
        Provider::GithubActions,
        application,
        Some(environment),
        completed,
        status.to_owned(),
        Some(&["github-job", repository, &id, &attempt]),
    );
    let time = |path: &[&str]| text(job, path).and_then(|t| Timestamp::parse(t).ok());
    command.started_at = time(&["started_at"]);
    if completed {
        command.finished_at = time(&["completed_at"]);
    }
    let branch = text(job, &["head_branch"]);
    command.fields = DeploymentFields {
        external_id: Some(id),
        commit_sha: text(job, &["head_sha"]).and_then(|s| CommitSha::parse(s).ok()),
        git_ref: branch.map(|b| format!("refs/heads/{b}")),
        branch: branch.map(str::to_owned),
        run_url: text(job, &["html_url"]).map(str::to_owned),
        deployed_by: text(payload, &["sender", "login"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A `deployment` (no state: just created, `pending`) or `deployment_status` payload.
fn deployment(payload: &Value, state: Option<&str>) -> Translation {
    let Some(id) = payload
        .get("deployment")
        .and_then(|d| d.get("id"))
        .map(Value::to_string)
    else {
        return Translation::Malformed("deployment.id is missing".into());
    };
    let environment = text(payload, &["deployment_status", "environment"])
        .or_else(|| text(payload, &["deployment", "environment"]));
    let Some(environment) = environment else {
        return Translation::Malformed("deployment.environment is missing".into());
    };
    let repository = text(payload, &["repository", "full_name"]).unwrap_or("");
    let application = match application_of(payload, &["repository", "html_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let state = state.unwrap_or("pending");
    let terminal = finished(Provider::GithubActions, state);
    let mut command = record(
        Provider::GithubActions,
        application,
        Some(environment),
        terminal,
        state.to_owned(),
        Some(&["github-deployment", repository, &id]),
    );
    let time = |path: &[&str]| text(payload, path).and_then(|t| Timestamp::parse(t).ok());
    command.started_at = time(&["deployment", "created_at"]);
    if terminal {
        command.finished_at = time(&["deployment_status", "updated_at"])
            .or_else(|| time(&["deployment_status", "created_at"]));
    }
    let run_url = text(payload, &["deployment_status", "target_url"])
        .or_else(|| text(payload, &["deployment_status", "log_url"]));
    let git_ref = text(payload, &["deployment", "ref"]);
    command.fields = DeploymentFields {
        external_id: Some(id),
        commit_sha: text(payload, &["deployment", "sha"]).and_then(|s| CommitSha::parse(s).ok()),
        git_ref: git_ref.map(str::to_owned),
        branch: deployed_branch(git_ref, text(payload, &["deployment", "sha"])),
        run_url: run_url.map(str::to_owned),
        deployed_by: text(payload, &["deployment_status", "creator", "login"])
            .or_else(|| text(payload, &["deployment", "creator", "login"]))
            .map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// The branch a deployment's `ref` names, where the provider does not say whether it is "a
/// branch, tag, or SHA" (GitHub's deployments, GitLab's Deployment Hook): a SHA (the deployed
/// commit, or a prefix of it) and `refs/tags/…` are no branch; `refs/heads/` is dropped; any
/// other name is taken for a branch.
fn deployed_branch(git_ref: Option<&str>, sha: Option<&str>) -> Option<String> {
    let git_ref = git_ref?.trim();
    let is_commit = sha.is_some_and(|sha| git_ref.len() >= 7 && sha.starts_with(git_ref));
    if git_ref.is_empty() || is_commit || git_ref.starts_with("refs/tags/") {
        return None;
    }
    Some(
        git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(git_ref)
            .to_owned(),
    )
}

/// The project path of a GitLab project's web address (`https://gitlab.example/group/app` →
/// `group/app`).
fn project_path(web_url: &str) -> Option<&str> {
    let rest = web_url.split_once("://")?.1;
    let path = rest.split_once('/')?.1.trim_end_matches('/');
    (!path.is_empty()).then_some(path)
}

/// The GitLab events read.
const GITLAB_EVENTS: &str =
    "Deployment Hook, Job Hook, Pipeline Hook, Push Hook and Merge Request Hook";

/// The key of one GitLab job's deployment: a Deployment Hook names its job (`deployable_id`),
/// a Job Hook is the job, so both update one record when both are enabled.
fn gitlab_job_key<'a>(project: &'a str, job: &'a str) -> [&'a str; 3] {
    ["gitlab-job", project, job]
}

/// Sets the kind of an environment created on first use from GitLab's tier (`production`,
/// `staging`, `testing`, `development`, `other`), instead of guessing it from the name.
fn gitlab_tier(command: &mut IngestCommand, tier: Option<&str>) {
    if let Some(environment) = command.environment.as_mut() {
        environment.kind = tier.and_then(|t| EnvironmentKind::parse(t).ok());
    }
}

/// GitLab's times: RFC 3339, or `2021-04-28 21:50:00 +0200` and `2016-08-12 15:23:28 UTC`.
fn gitlab_time(value: &str) -> Option<Timestamp> {
    if let Ok(at) = Timestamp::parse(value) {
        return Some(at);
    }
    let mut parts = value.split_whitespace();
    let (date, clock, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let zone = match zone {
        "UTC" | "Z" => "Z".to_owned(),
        offset if offset.len() == 5 => format!("{}:{}", offset.get(..3)?, offset.get(3..)?),
        offset => offset.to_owned(),
    };
    Timestamp::parse(&format!("{date}T{clock}{zone}")).ok()
}

fn gitlab(event: Option<&str>, body: &[u8]) -> Translation {
    let Some(event) = event.map(str::trim).filter(|e| !e.is_empty()) else {
        return Translation::Malformed(
            "no X-Gitlab-Event header: send the event name as GitLab does".into(),
        );
    };
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    match event {
        "Deployment Hook" => gitlab_deployment(&payload),
        "Pipeline Hook" => gitlab_pipeline(&payload),
        "Job Hook" => gitlab_job(&payload),
        "Push Hook" => {
            let git_ref = text(&payload, &["ref"]).unwrap_or("?");
            if text(&payload, &["after"]).is_some_and(|after| after.bytes().all(|b| b == b'0')) {
                return Translation::Acknowledge(format!(
                    "push deleting {git_ref}: nothing to record"
                ));
            }
            pushed_commits(&payload, format!("push to {git_ref}"))
        }
        "Merge Request Hook" => {
            let attributes = payload.get("object_attributes").unwrap_or(&Value::Null);
            let action = text(attributes, &["action"]).unwrap_or("?");
            if action != "merge" {
                return Translation::Ignore(format!(
                    "merge request {action}: only a merge is read"
                ));
            }
            let number = attributes
                .get("iid")
                .map_or_else(|| "?".to_owned(), Value::to_string);
            merged_commits(
                [
                    text(attributes, &["merge_commit_sha"]),
                    text(attributes, &["last_commit", "id"]),
                ],
                text(attributes, &["created_at"]).and_then(gitlab_time),
                None,
                format!(
                    "merge request !{number} merged (its merge and last commits count from its opening)"
                ),
            )
        }
        other => Translation::Ignore(format!(
            "GitLab event {other:?} is not read; shiplog reads {GITLAB_EVENTS}"
        )),
    }
}

fn gitlab_deployment(payload: &Value) -> Translation {
    let Some(id) = payload.get("deployment_id").map(Value::to_string) else {
        return Translation::Malformed("deployment_id is missing".into());
    };
    let Some(status) = text(payload, &["status"]) else {
        return Translation::Malformed("status is missing".into());
    };
    let Some(environment) = text(payload, &["environment"]) else {
        return Translation::Malformed("environment is missing".into());
    };
    let application = match application_of(payload, &["project", "web_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let terminal = finished(Provider::GitlabCi, status);
    let project = text(payload, &["project", "path_with_namespace"]).unwrap_or("");
    let job = payload
        .get("deployable_id")
        .filter(|v| !v.is_null())
        .map(Value::to_string);
    let key = match &job {
        Some(job) => gitlab_job_key(project, job),
        None => ["gitlab-deployment", project, &id],
    };
    let mut command = record(
        Provider::GitlabCi,
        application,
        Some(environment),
        terminal,
        status.to_owned(),
        Some(&key),
    );
    gitlab_tier(&mut command, text(payload, &["environment_tier"]));
    let at = text(payload, &["status_changed_at"]).and_then(gitlab_time);
    if terminal {
        command.finished_at = at;
    } else {
        command.started_at = at;
    }
    // The full commit is the last segment of commit_url; short_sha otherwise.
    let commit = text(payload, &["commit_url"])
        .and_then(|url| url.rsplit('/').next())
        .or_else(|| text(payload, &["short_sha"]))
        .and_then(|sha| CommitSha::parse(sha).ok());
    // Newer GitLab versions send the deployed `ref` (a branch or a tag, not said which).
    let git_ref = text(payload, &["ref"]);
    command.fields = DeploymentFields {
        external_id: Some(id),
        branch: deployed_branch(git_ref, commit.as_ref().map(CommitSha::as_str)),
        commit_sha: commit,
        commit_message: text(payload, &["commit_title"]).map(str::to_owned),
        git_ref: git_ref.map(str::to_owned),
        run_url: text(payload, &["deployable_url"]).map(str::to_owned),
        deployed_by: text(payload, &["user", "username"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A Job Hook: a job that starts an environment (`environment.action` `start`) is a deploy
/// there, one job attempt one deployment; any other job is ignored (its pipeline reports the
/// build).
fn gitlab_job(payload: &Value) -> Translation {
    let name = text(payload, &["build_name"]).unwrap_or("");
    let environment = payload.get("environment").filter(|e| !e.is_null());
    let Some(environment_name) = environment.and_then(|e| text(e, &["name"])) else {
        return Translation::Ignore(format!(
            "job {name:?} has no environment; its Pipeline Hook reports the build"
        ));
    };
    let action = environment
        .and_then(|e| text(e, &["action"]))
        .unwrap_or("start");
    if action != "start" {
        return Translation::Ignore(format!(
            "job {name:?} does {action} on {environment_name}, which is not a deployment (only start is)"
        ));
    }
    let Some(id) = payload.get("build_id").map(Value::to_string) else {
        return Translation::Malformed("build_id is missing".into());
    };
    let Some(status) = text(payload, &["build_status"]) else {
        return Translation::Malformed("build_status is missing".into());
    };
    // Job Hooks of GitLab versions without a `project` object name the project only by its
    // `repository.homepage`: the same address, so the same application and job key as the
    // Deployment Hook of the job.
    let web_path: &[&str] = if text(payload, &["project", "web_url"]).is_some() {
        &["project", "web_url"]
    } else {
        &["repository", "homepage"]
    };
    let application = match application_of(payload, web_path, true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let web_url = text(payload, web_path);
    let terminal = finished(Provider::GitlabCi, status);
    let project = text(payload, &["project", "path_with_namespace"])
        .or_else(|| web_url.and_then(project_path))
        .unwrap_or("");
    let mut command = record(
        Provider::GitlabCi,
        application,
        Some(environment_name),
        terminal,
        status.to_owned(),
        Some(&gitlab_job_key(project, &id)),
    );
    gitlab_tier(
        &mut command,
        environment.and_then(|e| text(e, &["deployment_tier"])),
    );
    let time = |field: &str| {
        text(payload, &[&format!("{field}_iso")])
            .or_else(|| text(payload, &[field]))
            .and_then(gitlab_time)
    };
    command.started_at = time("build_started_at").or_else(|| time("build_created_at"));
    if terminal {
        command.finished_at = time("build_finished_at");
    }
    let tag = payload.get("tag").and_then(Value::as_bool).unwrap_or(false);
    let git_ref = text(payload, &["ref"]);
    command.fields = DeploymentFields {
        external_id: Some(id.clone()),
        commit_sha: text(payload, &["sha"]).and_then(|s| CommitSha::parse(s).ok()),
        commit_message: text(payload, &["commit", "message"]).map(str::to_owned),
        git_ref: git_ref.map(str::to_owned),
        branch: git_ref.filter(|_| !tag).map(str::to_owned),
        run_url: web_url.map(|web| format!("{}/-/jobs/{id}", web.trim_end_matches('/'))),
        deployed_by: text(payload, &["user", "username"])
            .or_else(|| text(payload, &["user", "name"]))
            .map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

fn gitlab_pipeline(payload: &Value) -> Translation {
    let attributes = payload.get("object_attributes").unwrap_or(&Value::Null);
    let Some(status) = text(attributes, &["status"]) else {
        return Translation::Malformed("object_attributes.status is missing".into());
    };
    let Some(sha) = text(attributes, &["sha"]).and_then(|s| CommitSha::parse(s).ok()) else {
        return Translation::Malformed("object_attributes.sha is missing or not a commit".into());
    };
    let application = match application_of(payload, &["project", "web_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let terminal = finished(Provider::GitlabCi, status);
    let mut command = record(
        Provider::GitlabCi,
        application,
        None,
        terminal,
        status.to_owned(),
        None,
    );
    command.started_at = text(attributes, &["created_at"]).and_then(gitlab_time);
    if terminal {
        command.finished_at = text(attributes, &["finished_at"]).and_then(gitlab_time);
    }
    let tag = attributes
        .get("tag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let git_ref = text(attributes, &["ref"]);
    command.fields = DeploymentFields {
        external_id: attributes.get("id").map(Value::to_string),
        commit_sha: Some(sha),
        commit_message: text(payload, &["commit", "message"]).map(str::to_owned),
        commit_timestamp: text(payload, &["commit", "timestamp"]).and_then(gitlab_time),
        git_ref: git_ref.map(str::to_owned),
        branch: git_ref.filter(|_| !tag).map(str::to_owned),
        run_url: text(attributes, &["url"]).map(str::to_owned),
        deployed_by: text(payload, &["user", "username"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

fn jenkins(settings: &Value, body: &[u8]) -> Translation {
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    let Some(job) = text(&payload, &["name"]) else {
        return Translation::Malformed("name (the job) is missing".into());
    };
    let build = payload.get("build").unwrap_or(&Value::Null);
    let Some(number) = build.get("number").map(Value::to_string) else {
        return Translation::Malformed("build.number is missing".into());
    };
    let Some(phase) = text(build, &["phase"]).map(str::to_ascii_uppercase) else {
        return Translation::Malformed("build.phase is missing".into());
    };
    let completed = match phase.as_str() {
        "QUEUED" | "STARTED" => false,
        "COMPLETED" => true,
        "FINALIZED" => {
            return Translation::Ignore(format!(
                "{job} #{number} FINALIZED: repeats COMPLETED, which was recorded"
            ));
        }
        other => {
            return Translation::Malformed(format!(
                "build.phase {other:?} is not one of QUEUED, STARTED, COMPLETED, FINALIZED"
            ));
        }
    };
    // A job in a folder or a multibranch project sends its short name (`main`); its `url`
    // (`job/shop/job/main/`) gives the full name (`shop/main`), which `deploy_jobs` may name
    // instead, and which tells the jobs of two folders apart.
    let full = full_job_name(text(&payload, &["url"])).unwrap_or_else(|| job.to_owned());
    let deploy_jobs = settings.get("deploy_jobs");
    let environment = [full.as_str(), job].into_iter().find_map(|name| {
        deploy_jobs
            .and_then(|jobs| jobs.get(name))
            .and_then(Value::as_str)
    });
    let application =
        application_of(build, &["scm", "url"], false).unwrap_or(ApplicationRef::ProjectDefault);
    let status = if completed {
        text(build, &["status"]).unwrap_or("UNKNOWN").to_owned()
    } else if phase == "QUEUED" {
        "QUEUED".to_owned()
    } else {
        "RUNNING".to_owned()
    };
    let mut command = record(
        Provider::Jenkins,
        application,
        environment,
        completed,
        status,
        Some(&["jenkins", &full, &number]),
    );
    // `build.timestamp` (milliseconds) is the build's start in STARTED and its start plus its
    // `duration` in COMPLETED, as the plugin's JobListener sends them.
    let millis = |name: &str| build.get(name).and_then(Value::as_i64);
    let at = |ms: i64| {
        ms.checked_mul(1000)
            .and_then(|micros| Timestamp::from_unix_micros(micros).ok())
    };
    match (phase.as_str(), millis("timestamp")) {
        ("STARTED", Some(start)) => command.started_at = at(start),
        ("COMPLETED", Some(end)) => {
            command.finished_at = at(end);
            if let Some(duration) = millis("duration").filter(|d| *d > 0) {
                command.started_at = end.checked_sub(duration).and_then(at);
            }
        }
        _ => {}
    }
    let branch = text(build, &["scm", "branch"]);
    let culprits: Vec<&str> = build
        .get("scm")
        .and_then(|scm| scm.get("culprits"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).take(5).collect())
        .unwrap_or_default();
    command.fields = DeploymentFields {
        external_id: Some(format!("{full}#{number}")),
        deployed_by: (!culprits.is_empty()).then(|| culprits.join(", ")),
        commit_sha: text(build, &["scm", "commit"]).and_then(|c| CommitSha::parse(c).ok()),
        git_ref: branch.map(str::to_owned),
        branch: branch.map(|b| b.strip_prefix("origin/").unwrap_or(b).to_owned()),
        run_url: text(build, &["full_url"]).map(str::to_owned),
        build_number: Some(number),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A Jenkins job's full name from its `url` (`job/shop/job/main/` → `shop/main`; Jenkins
/// percent-encodes each name, `job/my%20app/` → `my app`).
fn full_job_name(url: Option<&str>) -> Option<String> {
    let mut names = Vec::new();
    let mut parts = url?.trim_matches('/').split('/');
    while let Some(part) = parts.next() {
        if part == "job" {
            names.push(
                percent_encoding::percent_decode_str(parts.next()?)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            );
        }
    }
    (!names.is_empty()).then(|| names.join("/"))
}

fn argocd(body: &[u8]) -> Translation {
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    let Some(app) = text(&payload, &["app"]) else {
        return Translation::Malformed("app (the application's name) is missing".into());
    };
    let Some(environment) = text(&payload, &["environment"]) else {
        return Translation::Malformed("environment is missing".into());
    };
    let phase = text(&payload, &["sync_phase"]).unwrap_or("");
    let health = text(&payload, &["health"]).unwrap_or("");
    if phase.is_empty() && health.is_empty() {
        return Translation::Malformed("send sync_phase and health".into());
    }
    let finished = finished(Provider::ArgoCd, phase);
    let revision = text(&payload, &["revision"]);
    let started = text(&payload, &["started_at"]);
    let operation = started.or(revision).unwrap_or("");
    let application =
        application_of(&payload, &["repo_url"], false).unwrap_or(ApplicationRef::ProjectDefault);
    let mut command = record(
        Provider::ArgoCd,
        application,
        Some(environment),
        finished,
        format!("{phase}/{health}"),
        Some(&["argocd", app, operation]),
    );
    let time = |name: &str| text(&payload, &[name]).and_then(|t| Timestamp::parse(t).ok());
    command.started_at = time("started_at");
    if finished {
        command.finished_at = time("finished_at");
    }
    command.fields = DeploymentFields {
        external_id: Some(app.to_owned()),
        commit_sha: revision.and_then(|r| CommitSha::parse(r).ok()),
        commit_timestamp: time("commit_timestamp"),
        git_ref: text(&payload, &["target_revision"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_jenkins_jobs_full_name_comes_from_its_url() {
        assert_eq!(
            full_job_name(Some("job/shop/job/main/")).as_deref(),
            Some("shop/main")
        );
        assert_eq!(
            full_job_name(Some("job/shop-deploy/")).as_deref(),
            Some("shop-deploy")
        );
        assert_eq!(
            full_job_name(Some("job/my%20app/job/feature%2Fx/")).as_deref(),
            Some("my app/feature/x")
        );
        assert_eq!(full_job_name(Some("job/100%/")).as_deref(), Some("100%"));
        assert_eq!(full_job_name(Some("")), None);
        assert_eq!(full_job_name(None), None);
    }

    #[test]
    fn a_gitlab_project_path_comes_from_its_web_address() {
        assert_eq!(
            project_path("http://192.168.64.1:3005/gitlab-org/gitlab-test"),
            Some("gitlab-org/gitlab-test")
        );
        assert_eq!(project_path("https://gitlab.example/a/b/c/"), Some("a/b/c"));
        assert_eq!(project_path("https://gitlab.example/"), None);
        assert_eq!(project_path("gitlab.example"), None);
    }

    #[test]
    fn a_github_deployment_ref_is_a_branch_unless_it_is_a_commit_or_a_tag() {
        let sha = Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
        assert_eq!(
            deployed_branch(Some("master"), sha).as_deref(),
            Some("master")
        );
        assert_eq!(
            deployed_branch(Some("refs/heads/hotfix/x"), sha).as_deref(),
            Some("hotfix/x")
        );
        assert_eq!(deployed_branch(Some("f95f852"), sha), None);
        assert_eq!(deployed_branch(Some("refs/tags/v1.2.3"), sha), None);
        assert_eq!(deployed_branch(Some(" "), sha), None);
        assert_eq!(deployed_branch(None, sha), None);
    }

    fn command(translation: Translation) -> IngestCommand {
        match translation {
            Translation::Ingest(command) => *command,
            other => panic!("not an ingest: {other:?}"),
        }
    }

    #[test]
    fn a_deployment_status_becomes_its_deploy() {
        let body = serde_json::json!({
            "deployment_status": {"state": "failure", "environment": "production",
                                  "updated_at": "2026-11-28T10:05:00Z", "target_url": "https://ci.example/1",
                                  "creator": {"login": "ana"}},
            "deployment": {"id": 42, "sha": "abcdef1234567", "ref": "main",
                           "created_at": "2026-11-28T10:00:00Z", "environment": "production"},
            "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"},
        });
        let c = command(github(
            &Value::Null,
            Some("deployment_status"),
            body.to_string().as_bytes(),
        ));
        assert_eq!(c.event, PipelineEvent::DEPLOY_COMPLETED);
        assert_eq!(c.status.as_deref(), Some("failure"));
        assert_eq!(c.environment.unwrap().name, "production");
        assert_eq!(c.fields.external_id.as_deref(), Some("42"));
        assert_eq!(c.fields.deployed_by.as_deref(), Some("ana"));
        assert_eq!(c.fields.run_url.as_deref(), Some("https://ci.example/1"));
        assert_eq!(c.started_at.unwrap().to_rfc3339(), "2026-11-28T10:00:00Z");
        assert_eq!(c.finished_at.unwrap().to_rfc3339(), "2026-11-28T10:05:00Z");
        assert!(matches!(c.application, ApplicationRef::Repo(_)));
        // Every status of one GitHub deployment is one shiplog deployment.
        let mut pending = body.clone();
        pending["deployment_status"]["state"] = "in_progress".into();
        let p = command(github(
            &Value::Null,
            Some("deployment_status"),
            pending.to_string().as_bytes(),
        ));
        assert_eq!(p.event, PipelineEvent::DEPLOY_STARTED);
        assert_eq!(p.correlation, c.correlation);
        assert_eq!(p.finished_at, None);
    }

    #[test]
    fn other_events_and_bad_bodies_say_why() {
        assert!(
            matches!(github(&Value::Null, Some("ping"), b"{\"hook_id\": 7}"), Translation::Acknowledge(r) if r.contains('7'))
        );
        assert!(
            matches!(github(&Value::Null, Some("issues"), b"{}"), Translation::Ignore(r) if r.contains("deployment_status"))
        );
        assert!(matches!(
            github(
                &Value::Null,
                Some("deployment_status"),
                b"{\"deployment_status\": {\"state\": \"inactive\"}}"
            ),
            Translation::Ignore(_)
        ));
        assert!(
            matches!(github(&Value::Null, None, b"{}"), Translation::Malformed(r) if r.contains("X-GitHub-Event"))
        );
        assert!(
            matches!(github(&Value::Null, Some("ping"), b"payload=%7B"), Translation::Malformed(r) if r.contains("application/json"))
        );
        assert!(
            matches!(github(&Value::Null, Some("deployment_status"), b"{\"deployment_status\": {\"state\": \"success\"}}"), Translation::Malformed(r) if r.contains("deployment.id"))
        );
    }

    #[test]
    fn gitlab_times_read_in_every_spelling() {
        for (given, expected) in [
            ("2021-04-28 21:50:00 +0200", "2021-04-28T19:50:00Z"),
            ("2016-08-12 15:23:28 UTC", "2016-08-12T15:23:28Z"),
            ("2016-08-12T17:23:21+02:00", "2016-08-12T15:23:21Z"),
        ] {
            assert_eq!(
                gitlab_time(given).unwrap().to_rfc3339(),
                expected,
                "{given}"
            );
        }
        assert!(gitlab_time("yesterday").is_none());
    }

    #[test]
    fn a_gitlab_pipeline_is_a_build_of_its_commit() {
        let body = serde_json::json!({
            "object_kind": "pipeline",
            "object_attributes": {"id": 31, "ref": "main", "tag": false, "status": "success",
                "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
                "created_at": "2016-08-12 15:23:28 UTC", "finished_at": "2016-08-12 15:26:29 UTC",
                "url": "http://example.com/gitlab-org/gitlab-test/-/pipelines/31"},
            "user": {"username": "root"},
            "project": {"web_url": "http://example.com/gitlab-org/gitlab-test"},
            "commit": {"message": "test\n", "timestamp": "2016-08-12T17:23:21+02:00"},
        });
        let c = command(gitlab(Some("Pipeline Hook"), body.to_string().as_bytes()));
        assert_eq!(c.event.to_string(), "build.completed");
        assert_eq!(c.fields.branch.as_deref(), Some("main"));
        assert_eq!(
            c.fields.commit_timestamp.unwrap().to_rfc3339(),
            "2016-08-12T15:23:21Z"
        );
        assert!(
            matches!(gitlab(Some("Issue Hook"), b"{}"), Translation::Ignore(r) if r.contains("Deployment Hook"))
        );
        // A push with no commits records nothing.
        assert!(matches!(
            gitlab(Some("Push Hook"), b"{}"),
            Translation::Acknowledge(_)
        ));
    }

    #[test]
    fn a_jenkins_job_is_a_deploy_when_the_settings_say_so() {
        let settings = serde_json::json!({"deploy_jobs": {"shop-deploy": "production"}});
        let body = |job: &str, phase: &str| {
            serde_json::json!({"name": job, "url": "job/x/",
                "build": {"full_url": "http://ci/job/x/18/", "number": 18, "phase": phase,
                          "status": "FAILURE", "url": "job/x/18/",
                          "scm": {"url": "https://github.com/acme/shop.git", "branch": "origin/main",
                                  "commit": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"}}})
            .to_string()
        };
        let deploy = command(jenkins(
            &settings,
            body("shop-deploy", "COMPLETED").as_bytes(),
        ));
        assert_eq!(deploy.event, PipelineEvent::DEPLOY_COMPLETED);
        assert_eq!(deploy.environment.unwrap().name, "production");
        assert_eq!(deploy.status.as_deref(), Some("FAILURE"));
        assert_eq!(deploy.fields.branch.as_deref(), Some("main"));
        let started = command(jenkins(
            &settings,
            body("shop-deploy", "STARTED").as_bytes(),
        ));
        assert_eq!(started.event, PipelineEvent::DEPLOY_STARTED);
        assert_eq!(started.correlation, deploy.correlation);
        let build = command(jenkins(
            &settings,
            body("shop-test", "COMPLETED").as_bytes(),
        ));
        assert_eq!(build.event.to_string(), "build.completed");
        assert!(build.environment.is_none());
        assert!(matches!(
            jenkins(&settings, body("shop-deploy", "FINALIZED").as_bytes()),
            Translation::Ignore(_)
        ));
        assert!(matches!(
            jenkins(&settings, b"[]"),
            Translation::Malformed(_)
        ));
    }

    #[test]
    fn an_argo_cd_sync_is_one_deployment_whatever_is_repeated() {
        let body = |phase: &str, health: &str| {
            serde_json::json!({"app": "shop", "revision": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0",
                "sync_phase": phase, "health": health, "started_at": "2026-11-28T10:00:00Z",
                "finished_at": "2026-11-28T10:02:00Z", "repo_url": "https://github.com/acme/shop.git",
                "environment": "production"})
            .to_string()
        };
        let deployed = command(argocd(body("Succeeded", "Healthy").as_bytes()));
        assert_eq!(deployed.event, PipelineEvent::DEPLOY_COMPLETED);
        assert_eq!(deployed.status.as_deref(), Some("Succeeded/Healthy"));
        let degraded = command(argocd(body("Succeeded", "Degraded").as_bytes()));
        assert_eq!(degraded.correlation, deployed.correlation, "the same sync");
        let running = command(argocd(body("Running", "Progressing").as_bytes()));
        assert_eq!(running.event, PipelineEvent::DEPLOY_STARTED);
        assert!(matches!(
            argocd(b"{\"app\": \"shop\"}"),
            Translation::Malformed(_)
        ));
    }
}
