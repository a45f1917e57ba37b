//! Providers' own webhook payloads, translated into what shiplog records
//! ([`shiplog_app::integrations::Translation`]). Called only for deliveries already found
//! authentic (`App::receive_integration` checks the signature first).
//!
//! One module per provider: [`github`], [`gitlab`], [`jenkins`], [`argocd`], and [`incidents`]
//! (PagerDuty and Opsgenie); this module holds what they share.

mod argocd;
mod github;
mod gitlab;
mod incidents;
mod jenkins;

use gitlab::gitlab_time;

use serde_json::Value;
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::integrations::Translation;
use shiplog_domain::event::{Phase, PipelineEvent, Stage};
use shiplog_domain::ids::{CommitSha, IdempotencyKey};
use shiplog_domain::integration::IntegrationProvider;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

/// What a delivery of `provider` says.
pub fn translate(
    provider: IntegrationProvider,
    settings: &Value,
    event: Option<&str>,
    body: &[u8],
) -> Translation {
    match provider {
        IntegrationProvider::Github => github::github(settings, event, body),
        IntegrationProvider::Gitlab => gitlab::gitlab(event, body),
        IntegrationProvider::Jenkins => jenkins::jenkins(settings, body),
        IntegrationProvider::Argocd => argocd::argocd(body),
        IntegrationProvider::Pagerduty => incidents::pagerduty(settings, body),
        IntegrationProvider::Opsgenie => incidents::opsgenie(settings, body),
    }
}

/// The most commits one delivery records (GitHub sends at most 2048, GitLab 20).
pub(super) const MAX_COMMITS: usize = 200;

/// The `id` and `timestamp` of each commit of a push (GitHub's and GitLab's `commits`), or
/// why not; `what` says what they were, for the log.
pub(super) fn pushed_commits(payload: &Value, what: String) -> Translation {
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
pub(super) fn merged_commits(
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

pub(super) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What every provider's event becomes: with an `environment`, a deploy there (created on
/// first use), else a build; `completed` ends it, else it starts; `key` names the one record
/// every later status of it updates (none: shiplog derives it from the run).
pub(super) fn record(
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
pub(super) fn object(body: &[u8]) -> Result<Value, Translation> {
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
pub(super) fn application_of(
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

/// The branch a deployment's `ref` names, where the provider does not say whether it is "a
/// branch, tag, or SHA" (GitHub's deployments, GitLab's Deployment Hook): a SHA (the deployed
/// commit, or a prefix of it) and `refs/tags/…` are no branch; `refs/heads/` is dropped; any
/// other name is taken for a branch.
pub(super) fn deployed_branch(git_ref: Option<&str>, sha: Option<&str>) -> Option<String> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    pub(super) fn command(translation: Translation) -> IngestCommand {
        match translation {
            Translation::Ingest(command) => *command,
            other => panic!("not an ingest: {other:?}"),
        }
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
}
