//! `shiplog import gitlab`: a project's deployments from GitLab's REST API v4.
//!
//! Reads `GET /projects/:id/deployments?order_by=updated_at&sort=asc` (100 per page, GitLab's
//! `x-next-page`), and on a later run only those updated after the newest one read
//! (`updated_after`). A deployment carries its job (`deployable`) with the commit's message
//! and time, so nothing else is read but the project itself (its path, which GitLab's webhooks
//! name, so that their events of the same deployment update the same record: `gitlab-job`
//! when the deployment has a job, else `gitlab-deployment`). Deployments that have not
//! finished are left to live events.

use std::path::Path;

use serde_json::{Value, json};

use super::{Api, Sender, State, map_environment, percent, text, without_nulls};

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The GitLab project: its id or its path (`group/project`).
    pub project: String,
    /// The GitLab host (`https://gitlab.com`); `/api/v4` is added.
    pub api_url: String,
    /// Only deployments updated after this time (RFC 3339).
    pub since: Option<String>,
    /// GitLab environment → shiplog environment.
    pub environment_map: Vec<(String, String)>,
    /// The shiplog application (default: the project's path's last part).
    pub application: Option<String>,
}

/// GitLab's finished deployment statuses.
const FINISHED: [&str; 3] = ["success", "failed", "canceled"];

/// Imports the project's history; `state_path` is where it resumes and is saved (none: a dry
/// run, which neither reads nor writes it).
pub async fn import(
    options: &Options,
    token: Option<String>,
    state_path: Option<&Path>,
    sender: &mut Sender,
) -> Result<(), String> {
    let mut api = Api::new(token.map(|t| ("private-token", t)));
    let host = options.api_url.trim_end_matches('/');
    let host = host.strip_suffix("/api/v4").unwrap_or(host);
    let project_url = format!("{host}/api/v4/projects/{}", percent(&options.project));
    let (project, _) = api.get(&project_url, &sender.progress).await?;
    let path = text(&project, &["path_with_namespace"])
        .ok_or_else(|| format!("{project_url}: no path_with_namespace in GitLab's answer"))?
        .to_owned();
    let application = options
        .application
        .clone()
        .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(path.as_str()).to_owned());
    let mut state = state_path.map_or_else(|| Ok(State::default()), State::load)?;
    let since = options.since.clone().or_else(|| state.since.clone());
    let mut page = state.resume.clone().unwrap_or_else(|| "1".to_owned());
    loop {
        let mut url = format!(
            "{project_url}/deployments?order_by=updated_at&sort=asc&per_page=100&page={}",
            percent(&page)
        );
        if let Some(since) = &since {
            url.push_str("&updated_after=");
            url.push_str(&percent(since));
        }
        let (deployments, headers) = api.get(&url, &sender.progress).await?;
        for deployment in deployments
            .as_array()
            .ok_or_else(|| format!("{url}: not a list of deployments"))?
        {
            if let Some(updated) = text(deployment, &["updated_at"])
                && state
                    .newest
                    .as_deref()
                    .is_none_or(|newest| updated > newest)
            {
                state.newest = Some(updated.to_owned());
            }
            let status = text(deployment, &["status"]).unwrap_or_default();
            if !FINISHED.contains(&status) {
                sender.summary.skip("not finished");
                continue;
            }
            let job = deployment
                .get("deployable")
                .filter(|d| d.is_object())
                .cloned()
                .unwrap_or(Value::Null);
            let (source, id) = match job.get("id").filter(|id| !id.is_null()) {
                Some(job_id) => ("gitlab-job", job_id.to_string()),
                None => (
                    "gitlab-deployment",
                    deployment
                        .get("id")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                ),
            };
            let environment = map_environment(
                &options.environment_map,
                text(deployment, &["environment", "name"]).unwrap_or("production"),
            );
            let git_ref = text(deployment, &["ref"]);
            let tag = job.get("tag").and_then(Value::as_bool).unwrap_or(false);
            let record = json!({
                "application": application,
                "environment": environment,
                "status": status,
                "provider": "gitlab",
                "started_at": text(&job, &["started_at"]).or_else(|| text(deployment, &["created_at"])),
                "finished_at": text(&job, &["finished_at"]).or_else(|| text(deployment, &["updated_at"])),
                "commit_sha": text(deployment, &["sha"]),
                "commit_timestamp": text(&job, &["commit", "committed_date"])
                    .or_else(|| text(&job, &["commit", "created_at"])),
                "commit_message": text(&job, &["commit", "message"]),
                "ref": git_ref,
                "branch": git_ref.filter(|_| !tag),
                "url": text(&job, &["web_url"]).or_else(|| text(&job, &["pipeline", "web_url"])),
                "deployed_by": text(deployment, &["user", "username"]),
                "source": source,
                "repository": path,
                "external_id": id,
            });
            sender.push(&without_nulls(record)).await?;
        }
        sender.flush().await?;
        let next = headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        match next {
            Some(next) => {
                state.resume = Some(next.clone());
                if let Some(path) = state_path {
                    state.save(path)?;
                }
                page = next;
            }
            None => break,
        }
    }
    state.resume = None;
    state.since = state.newest.take().or(state.since);
    match state_path {
        Some(path) => state.save(path),
        None => Ok(()),
    }
}
