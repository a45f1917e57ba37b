//! Argo CD's notifications.
//!
//! The body of the body of the notifications template in `docs/ci/argo.md`: `app`, `revision`,
//! `sync_phase`, `health`, `started_at`, `finished_at`, `repo_url`, `environment`,
//! `commit_timestamp`): the status is sync phase and health combined by
//! `shiplog_domain::status::argo_cd`; one sync operation (the application and the operation's
//! start) is one deployment, so repeated `on-deployed` notifications and a later
//! `on-health-degraded` of the same sync update it instead of adding one.

use shiplog_app::ingest::ApplicationRef;
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::status::{Provider, finished};
use shiplog_domain::timestamp::Timestamp;

use super::{application_of, object, record, text};

pub(super) fn argocd(body: &[u8]) -> Translation {
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
    use crate::providers::tests::command;
    use shiplog_domain::event::PipelineEvent;

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
