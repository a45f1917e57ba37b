//! Providers' own webhook payloads, translated into what shiplog records
//! ([`shiplog_app::integrations::Translation`]). Called only for deliveries already found
//! authentic (`App::receive_integration` checks the signature first).
//!
//! GitHub: `ping` (acknowledged), `deployment` (a deploy started, `pending`) and
//! `deployment_status` (its progress and outcome: GitHub's deployment states go through the
//! GitHub words of `shiplog_domain::status`); every status of one GitHub deployment updates one
//! shiplog deployment, keyed by the repository and GitHub's deployment id. `inactive` (GitHub
//! retiring an older deployment after a newer one) is not an outcome and is ignored. Any other
//! event is ignored, with the list of those read.

use serde_json::Value;
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, IdempotencyKey};
use shiplog_domain::integration::IntegrationProvider;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

/// What a delivery of `provider` says.
pub fn translate(provider: IntegrationProvider, event: Option<&str>, body: &[u8]) -> Translation {
    match provider {
        IntegrationProvider::Github => github(event, body),
        other => Translation::Ignore(format!("{other} deliveries are not read yet")),
    }
}

/// The GitHub events read.
const GITHUB_EVENTS: &str = "ping, deployment and deployment_status";

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn github(event: Option<&str>, body: &[u8]) -> Translation {
    let Some(event) = event.map(str::trim).filter(|e| !e.is_empty()) else {
        return Translation::Malformed(
            "no X-GitHub-Event header: send the event name as GitHub does".into(),
        );
    };
    let payload: Value = match serde_json::from_slice(body) {
        Ok(payload @ Value::Object(_)) => payload,
        Ok(_) => return Translation::Malformed("the body is not a JSON object".into()),
        Err(error) => {
            return Translation::Malformed(format!(
                "the body is not JSON ({error}): set the webhook's content type to application/json"
            ));
        }
    };
    match event {
        "ping" => Translation::Acknowledge(format!(
            "ping: GitHub reached this integration (hook {})",
            payload
                .get("hook_id")
                .map_or_else(|| "?".to_owned(), Value::to_string)
        )),
        "deployment" => deployment(&payload, None),
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
    let application = match text(payload, &["repository", "html_url"]).map(RepoIdentity::parse) {
        Some(Ok(repo)) => ApplicationRef::Repo(repo),
        Some(Err(error)) => {
            return Translation::Malformed(format!("repository.html_url: {error}"));
        }
        None => ApplicationRef::ProjectDefault,
    };
    let state = state.unwrap_or("pending");
    let terminal = matches!(
        state.to_ascii_lowercase().as_str(),
        "success" | "failure" | "error"
    );
    let event = if terminal {
        PipelineEvent::DEPLOY_COMPLETED
    } else {
        PipelineEvent::DEPLOY_STARTED
    };
    let mut command = IngestCommand::new(event, Provider::GithubActions, application);
    command.environment = Some(EnvironmentRef {
        name: environment.to_owned(),
        create_if_missing: true,
    });
    command.status = Some(state.to_owned());
    command.correlation = Correlation::Explicit {
        key: IdempotencyKey::derived(&["github-deployment", repository, &id]),
        exclusive: false,
    };
    let time = |path: &[&str]| text(payload, path).and_then(|t| Timestamp::parse(t).ok());
    command.started_at = time(&["deployment", "created_at"]);
    if terminal {
        command.finished_at = time(&["deployment_status", "updated_at"])
            .or_else(|| time(&["deployment_status", "created_at"]));
    }
    let run_url = text(payload, &["deployment_status", "target_url"])
        .or_else(|| text(payload, &["deployment_status", "log_url"]));
    command.fields = DeploymentFields {
        external_id: Some(id),
        commit_sha: text(payload, &["deployment", "sha"]).and_then(|s| CommitSha::parse(s).ok()),
        git_ref: text(payload, &["deployment", "ref"]).map(str::to_owned),
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
            matches!(github(Some("ping"), b"{\"hook_id\": 7}"), Translation::Acknowledge(r) if r.contains('7'))
        );
        assert!(
            matches!(github(Some("issues"), b"{}"), Translation::Ignore(r) if r.contains("deployment_status"))
        );
        assert!(matches!(
            github(
                Some("deployment_status"),
                b"{\"deployment_status\": {\"state\": \"inactive\"}}"
            ),
            Translation::Ignore(_)
        ));
        assert!(
            matches!(github(None, b"{}"), Translation::Malformed(r) if r.contains("X-GitHub-Event"))
        );
        assert!(
            matches!(github(Some("ping"), b"payload=%7B"), Translation::Malformed(r) if r.contains("application/json"))
        );
        assert!(
            matches!(github(Some("deployment_status"), b"{\"deployment_status\": {\"state\": \"success\"}}"), Translation::Malformed(r) if r.contains("deployment.id"))
        );
    }
}
