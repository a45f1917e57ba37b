//! GitHub's webhooks.
//!
//! `ping` (acknowledged), `deployment` (a deploy started, `pending`) and
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

use serde_json::Value;
use shiplog_app::import::{Source, source_key_parts};
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{Provider, finished};
use shiplog_domain::timestamp::Timestamp;

use super::{
    application_of, deployed_branch, merged_commits, object, pushed_commits, record, text,
};

/// The GitHub events read.
pub(super) const GITHUB_EVENTS: &str =
    "ping, deployment, deployment_status, workflow_run, workflow_job, push and pull_request";

pub(super) fn github(settings: &Value, event: Option<&str>, body: &[u8]) -> Translation {
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
pub(super) fn actions_status(run: &Value) -> (bool, &str) {
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
pub(super) fn workflow_run(settings: &Value, payload: &Value) -> Translation {
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
        Some(&source_key_parts(
            Source::GithubRun,
            repository,
            &id,
            &attempt,
        )),
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
pub(super) fn workflow_job(settings: &Value, payload: &Value) -> Translation {
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
pub(super) fn deployment(payload: &Value, state: Option<&str>) -> Translation {
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
        Some(&source_key_parts(
            Source::GithubDeployment,
            repository,
            &id,
            "",
        )),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::providers::tests::command;
    use shiplog_app::ingest::ApplicationRef;
    use shiplog_domain::event::PipelineEvent;

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
}
