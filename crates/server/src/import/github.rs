//! `shiplog import github`: a repository's deployments from GitHub's REST API (GitHub.com, or
//! GitHub Enterprise Server's `/api/v3`).
//!
//! Reads `GET /repos/{owner}/{repo}/deployments` newest first (100 per page, following `Link`
//! `rel="next"`), each deployment's statuses (its outcome: the newest status other than
//! `inactive`, which GitHub sets on a deployment a newer one replaced), and each deployed
//! commit once (`GET /repos/{owner}/{repo}/commits/{sha}`: its date, where lead time starts,
//! and its message, whose references are linked). A repository without deployments is read
//! from the successful runs of the workflows named by `--workflow` instead. Each record
//! names its source (`github-deployment` or `github-run`) so that GitHub's webhooks of the
//! same deployment, before or after, update the same record. Deployments that have not
//! finished are left to live events.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{Api, Sender, State, map_environment, next_link, percent, text, without_nulls};

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// `owner/name`.
    pub repo: String,
    /// The API's base address (`https://api.github.com`, `https://ghe.example.com/api/v3`).
    pub api_url: String,
    /// Only deployments created at or after this time (RFC 3339).
    pub since: Option<String>,
    /// GitHub environment → shiplog environment.
    pub environment_map: Vec<(String, String)>,
    /// Workflows (name or file) whose successful runs are deployments, with their environment.
    pub workflows: Vec<(String, String)>,
    /// The shiplog application (default: the repository's name).
    pub application: Option<String>,
}

/// The outcome words of GitHub's deployment states.
const FINISHED: [&str; 4] = ["success", "failure", "error", "inactive"];

/// Imports the repository's history; `state_path` is where it resumes and is saved (none: a
/// dry run, which neither reads nor writes it).
pub async fn import(
    options: &Options,
    token: Option<String>,
    state_path: Option<&Path>,
    sender: &mut Sender,
) -> Result<(), String> {
    let (owner, name) = options
        .repo
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| format!("--repo {:?}: write OWNER/NAME", options.repo))?;
    let mut api = Api::new(token.map(|t| ("authorization", format!("Bearer {t}"))));
    let base = format!(
        "{}/repos/{}/{}",
        options.api_url.trim_end_matches('/'),
        percent(owner),
        percent(name)
    );
    let mut state = state_path.map_or_else(|| Ok(State::default()), State::load)?;
    let since = options.since.clone().or_else(|| state.since.clone());
    let application = options
        .application
        .clone()
        .unwrap_or_else(|| name.to_owned());
    let mut commits: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let first = format!("{base}/deployments?per_page=100");
    let mut page = state.resume.clone().unwrap_or_else(|| first.clone());
    let mut seen_any = state.resume.is_some();
    loop {
        let (deployments, headers) = api.get(&page, &sender.progress).await?;
        let deployments = deployments
            .as_array()
            .ok_or_else(|| format!("{page}: not a list of deployments"))?
            .clone();
        let mut older = false;
        for deployment in &deployments {
            seen_any = true;
            let Some(created) = text(deployment, &["created_at"]) else {
                continue;
            };
            if since.as_deref().is_some_and(|since| created < since) {
                older = true;
                break;
            }
            if state
                .newest
                .as_deref()
                .is_none_or(|newest| created > newest)
            {
                state.newest = Some(created.to_owned());
            }
            let Some(id) = deployment.get("id").map(Value::to_string) else {
                continue;
            };
            let (statuses, _) = api
                .get(
                    &format!("{base}/deployments/{id}/statuses?per_page=100"),
                    &sender.progress,
                )
                .await?;
            let outcome = statuses.as_array().and_then(|all| {
                all.iter()
                    .find(|s| text(s, &["state"]).is_some_and(|state| state != "inactive"))
            });
            let Some(outcome) = outcome
                .filter(|s| text(s, &["state"]).is_some_and(|state| FINISHED.contains(&state)))
            else {
                sender.summary.skip("not finished");
                continue;
            };
            let sha = text(deployment, &["sha"]).unwrap_or_default().to_owned();
            let (commit_time, message) = match commits.get(&sha) {
                Some(known) => known.clone(),
                None if sha.is_empty() => (None, None),
                None => {
                    let (commit, _) = api
                        .get(&format!("{base}/commits/{sha}"), &sender.progress)
                        .await?;
                    let known = (
                        text(&commit, &["commit", "committer", "date"])
                            .or_else(|| text(&commit, &["commit", "author", "date"]))
                            .map(str::to_owned),
                        text(&commit, &["commit", "message"]).map(str::to_owned),
                    );
                    commits.insert(sha.clone(), known.clone());
                    known
                }
            };
            let environment = map_environment(
                &options.environment_map,
                text(deployment, &["environment"]).unwrap_or("production"),
            );
            let git_ref = text(deployment, &["ref"]);
            let record = json!({
                "application": application,
                "environment": environment,
                "status": text(outcome, &["state"]),
                "provider": "github",
                "started_at": created,
                "finished_at": text(outcome, &["created_at"]),
                "commit_sha": (!sha.is_empty()).then_some(sha.as_str()),
                "commit_timestamp": commit_time,
                "commit_message": message,
                "ref": git_ref,
                "branch": git_ref.filter(|r| *r != sha && !r.starts_with("refs/tags/")),
                "url": text(outcome, &["target_url"])
                    .or_else(|| text(outcome, &["log_url"]))
                    .or_else(|| text(outcome, &["environment_url"])),
                "deployed_by": text(deployment, &["creator", "login"]),
                "source": "github-deployment",
                "repository": options.repo,
                "external_id": id,
            });
            sender.push(&without_nulls(record)).await?;
        }
        let next = if older { None } else { next_link(&headers) };
        // Everything read up to here is answered before the state says so.
        sender.flush().await?;
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
    if !seen_any && !options.workflows.is_empty() {
        for (workflow, environment) in &options.workflows {
            runs(
                &mut api,
                &base,
                options,
                workflow,
                environment,
                &application,
                sender,
            )
            .await?;
        }
    }
    state.resume = None;
    state.since = state.newest.take().or(state.since);
    match state_path {
        Some(path) => state.save(path),
        None => Ok(()),
    }
}

/// The successful runs of one workflow (found by name or file name), as deployments to
/// `environment`.
async fn runs(
    api: &mut Api,
    base: &str,
    options: &Options,
    workflow: &str,
    environment: &str,
    application: &str,
    sender: &mut Sender,
) -> Result<(), String> {
    let mut page = Some(format!("{base}/actions/workflows?per_page=100"));
    let mut id = None;
    while let (Some(url), None) = (page.take(), &id) {
        let (list, headers) = api.get(&url, &sender.progress).await?;
        id = list
            .get("workflows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|w| {
                text(w, &["name"]) == Some(workflow)
                    || text(w, &["path"])
                        .and_then(|p| p.rsplit('/').next())
                        .is_some_and(|file| file == workflow)
            })
            .and_then(|w| w.get("id"))
            .map(Value::to_string);
        page = next_link(&headers);
    }
    let id = id.ok_or_else(|| {
        format!("--workflow {workflow:?}: the repository has no workflow of that name or file")
    })?;
    let mut page = Some(format!(
        "{base}/actions/workflows/{id}/runs?status=success&per_page=100"
    ));
    while let Some(url) = page.take() {
        let (list, headers) = api.get(&url, &sender.progress).await?;
        for run in list
            .get("workflow_runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let started = text(run, &["run_started_at"]).or_else(|| text(run, &["created_at"]));
            if options
                .since
                .as_deref()
                .zip(started)
                .is_some_and(|(since, started)| started < since)
            {
                continue;
            }
            let branch = text(run, &["head_branch"]);
            let record = json!({
                "application": application,
                "environment": environment,
                "status": text(run, &["conclusion"]).unwrap_or("success"),
                "provider": "github",
                "started_at": started,
                "finished_at": text(run, &["updated_at"]),
                "commit_sha": text(run, &["head_sha"]),
                "commit_timestamp": text(run, &["head_commit", "timestamp"]),
                "commit_message": text(run, &["head_commit", "message"]),
                "ref": branch.map(|b| format!("refs/heads/{b}")),
                "branch": branch,
                "url": text(run, &["html_url"]),
                "deployed_by": text(run, &["actor", "login"]),
                "version": run.get("run_number").map(Value::to_string),
                "source": "github-run",
                "repository": options.repo,
                "external_id": run.get("id").map(Value::to_string),
                "run_attempt": run.get("run_attempt").and_then(Value::as_u64),
            });
            sender.push(&without_nulls(record)).await?;
        }
        page = next_link(&headers);
    }
    sender.flush().await
}
