//! `shiplog notify`: reports a deploy (or a build or test) from any CI to a shiplog server.
//!
//! [`detect`] reads the CI's own environment variables (GitHub Actions, GitLab CI, Jenkins,
//! CircleCI, Azure Pipelines, Bitbucket Pipelines, Buildkite, else nothing) into [`Fields`];
//! flags and `SHIPLOG_` variables override any of them. [`event_body`] builds the JSON with
//! serde, so any commit message travels intact. [`send`] posts it to the server's ingest API
//! (`POST /api/webhooks/ci`, the same use case as every ingest route) and retries connection
//! errors, `429` and `5xx` with exponential backoff and jitter, honouring `Retry-After`,
//! within a total time limit. A retried request is the same event, so the server records it
//! once; `deploy.started` and `deploy.completed` of one run share the run's URL, so they are one
//! deployment.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// What the CI (or the flags) say about the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// The commit deployed.
    pub commit_sha: Option<String>,
    /// Its message.
    pub commit_message: Option<String>,
    /// Its own time (RFC 3339).
    pub commit_timestamp: Option<String>,
    /// The Git ref.
    pub git_ref: Option<String>,
    /// The branch.
    pub branch: Option<String>,
    /// The repository's address.
    pub repo_url: Option<String>,
    /// The run's page.
    pub run_url: Option<String>,
    /// The build number.
    pub build_number: Option<String>,
    /// Who ran it.
    pub actor: Option<String>,
    /// The environment, when the CI knows it.
    pub environment: Option<String>,
}

/// The CI a run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ci {
    /// Its name, for people.
    pub name: &'static str,
    /// The provider shiplog normalizes its words with (`X-CI-Provider`).
    pub provider: &'static str,
}

/// No CI recognized: only flags and `SHIPLOG_` variables say anything.
pub const GENERIC: Ci = Ci {
    name: "no CI recognized",
    provider: "custom",
};

/// Reads the CI from its environment variables (`var` looks one up).
pub fn detect(var: &dyn Fn(&str) -> Option<String>) -> (Ci, Fields) {
    let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let joined = |parts: &[Option<String>], separator: &str| -> Option<String> {
        let parts: Option<Vec<String>> = parts.iter().cloned().collect();
        parts.map(|p| p.join(separator))
    };
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let repository = get("GITHUB_REPOSITORY");
        let repo_url = repository.as_ref().map(|r| format!("{server}/{r}"));
        let ci = Ci {
            name: "GitHub Actions",
            provider: "github-actions",
        };
        return (
            ci,
            Fields {
                commit_sha: get("GITHUB_SHA"),
                git_ref: get("GITHUB_REF"),
                branch: (get("GITHUB_REF_TYPE").as_deref() == Some("branch"))
                    .then(|| get("GITHUB_REF_NAME"))
                    .flatten(),
                run_url: joined(&[repo_url.clone(), get("GITHUB_RUN_ID")], "/actions/runs/"),
                repo_url,
                build_number: get("GITHUB_RUN_NUMBER"),
                actor: get("GITHUB_ACTOR"),
                ..Fields::default()
            },
        );
    }
    if get("GITLAB_CI").as_deref() == Some("true") {
        let ci = Ci {
            name: "GitLab CI",
            provider: "gitlab-ci",
        };
        return (
            ci,
            Fields {
                commit_sha: get("CI_COMMIT_SHA"),
                commit_message: get("CI_COMMIT_MESSAGE"),
                commit_timestamp: get("CI_COMMIT_TIMESTAMP"),
                git_ref: get("CI_COMMIT_REF_NAME"),
                branch: get("CI_COMMIT_BRANCH"),
                repo_url: get("CI_PROJECT_URL"),
                run_url: get("CI_PIPELINE_URL"),
                build_number: get("CI_PIPELINE_IID"),
                actor: get("GITLAB_USER_LOGIN"),
                environment: get("CI_ENVIRONMENT_NAME"),
            },
        );
    }
    if get("BUILDKITE").as_deref() == Some("true") {
        let ci = Ci {
            name: "Buildkite",
            provider: "custom",
        };
        return (
            ci,
            Fields {
                commit_sha: get("BUILDKITE_COMMIT"),
                commit_message: get("BUILDKITE_MESSAGE"),
                git_ref: get("BUILDKITE_TAG").or_else(|| get("BUILDKITE_BRANCH")),
                branch: get("BUILDKITE_BRANCH"),
                repo_url: get("BUILDKITE_REPO"),
                run_url: get("BUILDKITE_BUILD_URL"),
                build_number: get("BUILDKITE_BUILD_NUMBER"),
                actor: get("BUILDKITE_BUILD_CREATOR"),
                ..Fields::default()
            },
        );
    }
    if get("CIRCLECI").as_deref() == Some("true") {
        let ci = Ci {
            name: "CircleCI",
            provider: "circleci",
        };
        return (
            ci,
            Fields {
                commit_sha: get("CIRCLE_SHA1"),
                git_ref: get("CIRCLE_TAG").or_else(|| get("CIRCLE_BRANCH")),
                branch: get("CIRCLE_BRANCH"),
                repo_url: get("CIRCLE_REPOSITORY_URL"),
                run_url: get("CIRCLE_BUILD_URL"),
                build_number: get("CIRCLE_BUILD_NUM"),
                actor: get("CIRCLE_USERNAME"),
                ..Fields::default()
            },
        );
    }
    if get("TF_BUILD").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let ci = Ci {
            name: "Azure Pipelines",
            provider: "azure-devops",
        };
        let run_url = joined(
            &[
                get("SYSTEM_COLLECTIONURI").map(|u| u.trim_end_matches('/').to_owned()),
                get("SYSTEM_TEAMPROJECT"),
                get("BUILD_BUILDID"),
            ],
            "/",
        )
        .map(|joined| match joined.rsplit_once('/') {
            Some((base, id)) => format!("{base}/_build/results?buildId={id}"),
            None => joined,
        });
        return (
            ci,
            Fields {
                commit_sha: get("BUILD_SOURCEVERSION"),
                commit_message: get("BUILD_SOURCEVERSIONMESSAGE"),
                git_ref: get("BUILD_SOURCEBRANCH"),
                branch: get("BUILD_SOURCEBRANCH")
                    .and_then(|r| r.strip_prefix("refs/heads/").map(str::to_owned)),
                repo_url: get("BUILD_REPOSITORY_URI"),
                run_url,
                build_number: get("BUILD_BUILDNUMBER"),
                actor: get("BUILD_REQUESTEDFOR"),
                ..Fields::default()
            },
        );
    }
    if get("BITBUCKET_BUILD_NUMBER").is_some() {
        let ci = Ci {
            name: "Bitbucket Pipelines",
            provider: "bitbucket-pipelines",
        };
        let run_url = joined(
            &[
                get("BITBUCKET_REPO_FULL_NAME").map(|r| format!("https://bitbucket.org/{r}")),
                get("BITBUCKET_BUILD_NUMBER"),
            ],
            "/pipelines/results/",
        );
        return (
            ci,
            Fields {
                commit_sha: get("BITBUCKET_COMMIT"),
                git_ref: get("BITBUCKET_TAG").or_else(|| get("BITBUCKET_BRANCH")),
                branch: get("BITBUCKET_BRANCH"),
                repo_url: get("BITBUCKET_GIT_HTTP_ORIGIN"),
                run_url,
                build_number: get("BITBUCKET_BUILD_NUMBER"),
                environment: get("BITBUCKET_DEPLOYMENT_ENVIRONMENT"),
                ..Fields::default()
            },
        );
    }
    if get("JENKINS_URL").is_some() {
        let ci = Ci {
            name: "Jenkins",
            provider: "jenkins",
        };
        return (
            ci,
            Fields {
                commit_sha: get("GIT_COMMIT"),
                git_ref: get("GIT_BRANCH"),
                branch: get("GIT_BRANCH")
                    .map(|b| b.strip_prefix("origin/").map_or(b.clone(), str::to_owned)),
                repo_url: get("GIT_URL"),
                run_url: get("BUILD_URL"),
                build_number: get("BUILD_NUMBER"),
                actor: get("BUILD_USER_ID"),
                ..Fields::default()
            },
        );
    }
    (GENERIC, Fields::default())
}

impl Fields {
    /// Each field of `over` that is set replaces this one's.
    pub fn overridden_by(mut self, over: Fields) -> Self {
        macro_rules! take {
            ($($field:ident),*) => {
                $(if over.$field.is_some() { self.$field = over.$field; })*
            };
        }
        take!(
            commit_sha,
            commit_message,
            commit_timestamp,
            git_ref,
            branch,
            repo_url,
            run_url,
            build_number,
            actor,
            environment
        );
        self
    }
}

/// What one report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    /// `deploy.started`, `deploy.completed`, `build.…`, `test.…`.
    pub event: &'a str,
    /// shiplog's status word (or the CI's).
    pub status: &'a str,
    /// The project's slug.
    pub project: &'a str,
    /// The application, when the project has several.
    pub application: Option<&'a str>,
    /// When the run started (RFC 3339).
    pub started_at: Option<&'a str>,
    /// When it finished (RFC 3339).
    pub finished_at: Option<&'a str>,
    /// The deployment is rework (a hotfix, a rollback): sent as `"rework": true`.
    pub rework: bool,
}

/// The JSON body of one event, built by serde (any commit message is safe).
pub fn event_body(report: &Report<'_>, fields: &Fields) -> Value {
    let mut body = Map::new();
    body.insert("event".into(), json!(report.event));
    body.insert("project_slug".into(), json!(report.project));
    body.insert("status".into(), json!(report.status));
    let optional = [
        ("application", report.application.map(str::to_owned)),
        ("environment", fields.environment.clone()),
        ("commit_sha", fields.commit_sha.clone()),
        ("commit_message", fields.commit_message.clone()),
        ("commit_timestamp", fields.commit_timestamp.clone()),
        ("ref", fields.git_ref.clone()),
        ("branch", fields.branch.clone()),
        ("repo_url", fields.repo_url.clone()),
        ("url", fields.run_url.clone()),
        ("build_number", fields.build_number.clone()),
        ("deployed_by", fields.actor.clone()),
        ("started_at", report.started_at.map(str::to_owned)),
        ("finished_at", report.finished_at.map(str::to_owned)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), Value::String(value));
        }
    }
    if report.rework {
        body.insert("rework".into(), Value::Bool(true));
    }
    Value::Object(body)
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's base address.
    pub url: String,
    /// An `ingest` (or `admin`) API key.
    pub key: String,
    /// The provider header.
    pub provider: &'static str,
    /// The longest the whole report may take, retries included.
    pub deadline: Duration,
}

/// Posts one event; retries connection errors, `429` and `5xx` until `deadline`. `Ok` with
/// the server's answer, or why it was not delivered.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    body: &Value,
    jitter: &mut dyn FnMut() -> f64,
) -> Result<Value, String> {
    let started = Instant::now();
    let url = format!("{}/api/webhooks/ci", target.url.trim_end_matches('/'));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = target.deadline.saturating_sub(started.elapsed());
        let outcome = client
            .post(&url)
            .bearer_auth(&target.key)
            .header("x-ci-provider", target.provider)
            .header("content-type", "application/json")
            .timeout(left.max(Duration::from_millis(100)))
            .body(body.to_string())
            .send()
            .await;
        let (retry, why, wait) = match outcome {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                let retry = status.as_u16() == 429 || status.is_server_error();
                (
                    retry,
                    format!("the server answered {status}: {}", text.trim()),
                    retry_after,
                )
            }
            Err(error) => (true, format!("cannot reach {url}: {error}"), None),
        };
        // Exponential backoff from 0.5 s, at most 8 s, with up to 50 % jitter.
        let backoff = Duration::from_millis(500)
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(4)))
            .mul_f64(1.0 + 0.5 * jitter().clamp(0.0, 1.0));
        let wait = wait.unwrap_or(backoff);
        if !retry || started.elapsed() + wait >= target.deadline {
            return Err(format!("{why} (after {attempt} attempt(s))"));
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn github_actions() {
        let (ci, f) = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "3f786850e387550fdab836ed7e6dc881de23001b"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "123456"),
            ("GITHUB_RUN_NUMBER", "42"),
            ("GITHUB_ACTOR", "ana"),
        ]));
        assert_eq!(ci.provider, "github-actions");
        assert_eq!(
            f.commit_sha.as_deref(),
            Some("3f786850e387550fdab836ed7e6dc881de23001b")
        );
        assert_eq!(f.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(f.branch.as_deref(), Some("main"));
        assert_eq!(f.repo_url.as_deref(), Some("https://github.com/acme/shop"));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://github.com/acme/shop/actions/runs/123456")
        );
        assert_eq!(f.build_number.as_deref(), Some("42"));
        assert_eq!(f.actor.as_deref(), Some("ana"));
        // A tag is a ref, not a branch.
        let (_, tag) = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1"),
            ("GITHUB_REF_NAME", "v1"),
            ("GITHUB_REF_TYPE", "tag"),
        ]));
        assert_eq!(tag.branch, None);
    }

    #[test]
    fn gitlab_ci() {
        let (ci, f) = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "abc1234"),
            ("CI_COMMIT_MESSAGE", "fix: \"quoted\"\nsecond line"),
            ("CI_COMMIT_TIMESTAMP", "2026-11-28T10:00:00+00:00"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_PROJECT_URL", "https://gitlab.com/acme/shop"),
            (
                "CI_PIPELINE_URL",
                "https://gitlab.com/acme/shop/-/pipelines/9",
            ),
            ("CI_PIPELINE_IID", "9"),
            ("GITLAB_USER_LOGIN", "bo"),
            ("CI_ENVIRONMENT_NAME", "production"),
        ]));
        assert_eq!(ci.provider, "gitlab-ci");
        assert_eq!(
            f.commit_message.as_deref(),
            Some("fix: \"quoted\"\nsecond line")
        );
        assert_eq!(
            f.commit_timestamp.as_deref(),
            Some("2026-11-28T10:00:00+00:00")
        );
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://gitlab.com/acme/shop/-/pipelines/9")
        );
        assert_eq!(f.environment.as_deref(), Some("production"));
        assert_eq!(f.actor.as_deref(), Some("bo"));
    }

    #[test]
    fn jenkins() {
        let (ci, f) = detect(&env(&[
            ("JENKINS_URL", "https://ci.example/"),
            ("GIT_COMMIT", "abc1234"),
            ("GIT_BRANCH", "origin/main"),
            ("GIT_URL", "https://git.example/shop.git"),
            ("BUILD_URL", "https://ci.example/job/shop/7/"),
            ("BUILD_NUMBER", "7"),
        ]));
        assert_eq!(ci.provider, "jenkins");
        assert_eq!(f.branch.as_deref(), Some("main"));
        assert_eq!(f.run_url.as_deref(), Some("https://ci.example/job/shop/7/"));
        assert_eq!(f.build_number.as_deref(), Some("7"));
    }

    #[test]
    fn circleci() {
        let (ci, f) = detect(&env(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_SHA1", "abc1234"),
            ("CIRCLE_BRANCH", "main"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/shop/11"),
            ("CIRCLE_BUILD_NUM", "11"),
            ("CIRCLE_USERNAME", "cy"),
            ("CIRCLE_REPOSITORY_URL", "git@github.com:acme/shop.git"),
        ]));
        assert_eq!(ci.provider, "circleci");
        assert_eq!(f.git_ref.as_deref(), Some("main"));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://circleci.com/gh/acme/shop/11")
        );
        assert_eq!(f.actor.as_deref(), Some("cy"));
    }

    #[test]
    fn azure_pipelines() {
        let (ci, f) = detect(&env(&[
            ("TF_BUILD", "True"),
            ("BUILD_SOURCEVERSION", "abc1234"),
            ("BUILD_SOURCEVERSIONMESSAGE", "feat: x"),
            ("BUILD_SOURCEBRANCH", "refs/heads/main"),
            (
                "BUILD_REPOSITORY_URI",
                "https://dev.azure.com/acme/shop/_git/shop",
            ),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
            ("SYSTEM_TEAMPROJECT", "shop"),
            ("BUILD_BUILDID", "77"),
            ("BUILD_BUILDNUMBER", "20261128.1"),
            ("BUILD_REQUESTEDFOR", "Dee"),
        ]));
        assert_eq!(ci.provider, "azure-devops");
        assert_eq!(f.branch.as_deref(), Some("main"));
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://dev.azure.com/acme/shop/_build/results?buildId=77")
        );
        assert_eq!(f.commit_message.as_deref(), Some("feat: x"));
    }

    #[test]
    fn bitbucket_pipelines() {
        let (ci, f) = detect(&env(&[
            ("BITBUCKET_BUILD_NUMBER", "5"),
            ("BITBUCKET_COMMIT", "abc1234"),
            ("BITBUCKET_BRANCH", "main"),
            ("BITBUCKET_REPO_FULL_NAME", "acme/shop"),
            (
                "BITBUCKET_GIT_HTTP_ORIGIN",
                "http://bitbucket.org/acme/shop",
            ),
            ("BITBUCKET_DEPLOYMENT_ENVIRONMENT", "production"),
        ]));
        assert_eq!(ci.provider, "bitbucket-pipelines");
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://bitbucket.org/acme/shop/pipelines/results/5")
        );
        assert_eq!(f.environment.as_deref(), Some("production"));
    }

    #[test]
    fn buildkite() {
        let (ci, f) = detect(&env(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_COMMIT", "abc1234"),
            ("BUILDKITE_MESSAGE", "feat: y"),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_REPO", "git@github.com:acme/shop.git"),
            (
                "BUILDKITE_BUILD_URL",
                "https://buildkite.com/acme/shop/builds/3",
            ),
            ("BUILDKITE_BUILD_NUMBER", "3"),
            ("BUILDKITE_BUILD_CREATOR", "Eve"),
        ]));
        assert_eq!(ci.name, "Buildkite");
        assert_eq!(
            f.run_url.as_deref(),
            Some("https://buildkite.com/acme/shop/builds/3")
        );
        assert_eq!(f.actor.as_deref(), Some("Eve"));
    }

    #[test]
    fn nothing_known_is_generic_and_flags_override_the_ci() {
        let (ci, f) = detect(&env(&[("HOME", "/root")]));
        assert_eq!(ci, GENERIC);
        assert_eq!(f, Fields::default());
        let (_, f) = detect(&env(&[("GITLAB_CI", "true"), ("CI_COMMIT_SHA", "abc1234")]));
        let f = f.overridden_by(Fields {
            commit_sha: Some("fff0000".into()),
            ..Fields::default()
        });
        assert_eq!(f.commit_sha.as_deref(), Some("fff0000"));
    }

    #[test]
    fn the_body_carries_any_message_intact() {
        let message = "fix: \"quotes\", back\\slash\nnewline — ünïcödé 🚀";
        let body = event_body(
            &Report {
                event: "deploy.completed",
                status: "failed",
                project: "shop",
                application: None,
                started_at: Some("2026-11-28T10:00:00Z"),
                finished_at: None,
                rework: false,
            },
            &Fields {
                commit_message: Some(message.into()),
                ..Fields::default()
            },
        );
        let text = body.to_string();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["commit_message"], message);
        assert_eq!(back["status"], "failed");
        assert!(back.get("finished_at").is_none());
        assert!(back.get("rework").is_none(), "no mark unless asked");
    }

    #[test]
    fn rework_is_sent_as_a_boolean_when_asked() {
        let report = Report {
            event: "deploy.completed",
            status: "success",
            project: "shop",
            application: None,
            started_at: None,
            finished_at: None,
            rework: true,
        };
        let body = event_body(&report, &Fields::default());
        assert_eq!(body["rework"], Value::Bool(true));
    }
}
