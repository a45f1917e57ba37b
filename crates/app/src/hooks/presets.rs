//! Presets: ready-made templates for the usual receivers, so a user gives a token and a
//! repository instead of writing a request.
//!
//! Each commit-status preset reuses one `context` (GitHub, GitLab `name`, Bitbucket `key`) for
//! every state, so the provider updates one entry as the deployment moves along instead of
//! adding one per state. The default context is `shiplog/<environment code>`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{HookHeader, HookRequest, SecretText};
use crate::error::AppError;

/// Which preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetKind {
    /// GitHub commit status: `POST /repos/{owner}/{repo}/statuses/{sha}`.
    Github,
    /// GitLab commit status: `POST /projects/{id}/statuses/{sha}`.
    Gitlab,
    /// Bitbucket Cloud build status: `POST /repositories/{workspace}/{repo}/commit/{sha}/statuses/build`.
    Bitbucket,
    /// A Slack-compatible incoming-webhook message (`{"text": …}`).
    Slack,
}

impl PresetKind {
    /// Reads a preset name: `github`, `gitlab`, `bitbucket` or `slack`.
    pub fn parse(name: &str) -> Result<Self, AppError> {
        match name.trim() {
            "github" => Ok(Self::Github),
            "gitlab" => Ok(Self::Gitlab),
            "bitbucket" => Ok(Self::Bitbucket),
            "slack" => Ok(Self::Slack),
            other => Err(AppError::invalid(
                "preset.kind",
                format!("unknown preset {other:?}: use github, gitlab, bitbucket or slack"),
            )),
        }
    }
}

/// A preset and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetInput {
    /// Which preset.
    pub kind: PresetKind,
    /// `owner/name` (GitLab: the project path); default: the deployed application's repository.
    pub repository: Option<String>,
    /// The status context, reused for every state; default `shiplog/{{ environment.code }}`.
    pub context: Option<String>,
    /// The provider token, stored as the secret `access_token`.
    pub access_token: Option<String>,
    /// The API base URL, for GitHub Enterprise or self-managed GitLab.
    pub api_url: Option<String>,
    /// Slack: the incoming-webhook URL, stored as the secret `webhook_url`.
    pub webhook_url: Option<String>,
}

/// The events a preset fires on when none are given.
pub const DEFAULT_EVENTS: [&str; 4] = [
    "deployment.started",
    "deployment.succeeded",
    "deployment.failed",
    "deployment.cancelled",
];

const DESCRIPTION: &str = "shiplog: {{ deployment.status }} deployment of {{ application.name }} to {{ environment.name }}";

/// Fills `request`, `secrets` and (when empty) `events` from a preset.
pub(crate) fn apply(
    preset: PresetInput,
    request: &mut HookRequest,
    secrets: &mut BTreeMap<String, SecretText>,
    events: &mut Vec<String>,
) -> Result<(), AppError> {
    if events.is_empty() {
        events.extend(DEFAULT_EVENTS.map(str::to_owned));
    }
    let context = preset
        .context
        .unwrap_or_else(|| "shiplog/{{ environment.code }}".to_owned());
    let api = |default: &str| {
        preset
            .api_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    };
    if preset.kind == PresetKind::Slack {
        let url = preset.webhook_url.ok_or(AppError::MissingField {
            field: "preset.webhook_url",
            hint: "the Slack incoming-webhook URL",
        })?;
        secrets.insert("webhook_url".to_owned(), SecretText::new(url));
        request.target_url = "{{ secrets.webhook_url }}".to_owned();
        request.body = Some(json!({
            "text": "{{ project.name }}: {{ application.name }} {{ deployment.status }} in {{ environment.name }} (commit {{ deployment.commit_sha }}) {{ action.url }}",
        }));
        return Ok(());
    }
    match preset.access_token {
        Some(token) => {
            secrets.insert("access_token".to_owned(), SecretText::new(token));
        }
        None if secrets.contains_key("access_token") => {}
        None => {
            return Err(AppError::MissingField {
                field: "preset.access_token",
                hint: "a token that may write commit statuses",
            });
        }
    }
    let repository = preset
        .repository
        .map(|r| r.trim().trim_matches('/').to_owned());
    let header = |name: &str, value: &str| HookHeader {
        name: name.to_owned(),
        value: SecretText::new(value),
    };
    let sha = "{{ deployment.commit_sha }}";
    match preset.kind {
        PresetKind::Github => {
            let repo = repository.unwrap_or_else(|| "{{ application.repository }}".to_owned());
            request.target_url = format!(
                "{}/repos/{repo}/statuses/{sha}",
                api("https://api.github.com")
            );
            request.headers = vec![
                header("Authorization", "Bearer {{ secrets.access_token }}"),
                header("Accept", "application/vnd.github+json"),
                header("X-GitHub-Api-Version", "2022-11-28"),
            ];
            request.body = Some(json!({
                "state": "{{ status.github }}",
                "target_url": "{{ action.url }}",
                "description": DESCRIPTION,
                "context": context,
            }));
        }
        PresetKind::Gitlab => {
            let project = repository.map_or_else(
                || "{{ application.repository | replace(\"/\", \"%2F\") }}".to_owned(),
                |r| r.replace('/', "%2F"),
            );
            request.target_url = format!(
                "{}/projects/{project}/statuses/{sha}",
                api("https://gitlab.com/api/v4")
            );
            request.headers = vec![header("PRIVATE-TOKEN", "{{ secrets.access_token }}")];
            request.body = Some(json!({
                "state": "{{ status.gitlab }}",
                "name": context,
                "target_url": "{{ action.url }}",
                "description": DESCRIPTION,
            }));
        }
        PresetKind::Bitbucket => {
            let repo = repository.unwrap_or_else(|| "{{ application.repository }}".to_owned());
            request.target_url = format!(
                "{}/repositories/{repo}/commit/{sha}/statuses/build",
                api("https://api.bitbucket.org/2.0")
            );
            request.headers = vec![header("Authorization", "Bearer {{ secrets.access_token }}")];
            request.body = Some(json!({
                "key": context,
                "state": "{{ status.bitbucket }}",
                "name": context,
                "url": "{{ action.url }}",
                "description": DESCRIPTION,
            }));
        }
        PresetKind::Slack => {}
    }
    Ok(())
}
