//! Status normalization: every provider's status vocabulary → one [`DeploymentStatus`].
//!
//! Rules (the generated matrix in `docs/status-normalization.md` lists every word):
//! - Input is trimmed and matched case-insensitively; `_`, `-`, `.` and spaces are ignored,
//!   so `in_progress`, `inProgress`, `IN-PROGRESS` and `in progress` are one word.
//! - The named provider's table is consulted first, then the generic words, then every other
//!   provider's table: an unknown provider (or `custom`) still maps any known word. The tables
//!   never disagree about a word (a test checks it), so the order only matters for speed.
//! - A two-word Argo CD value such as `Succeeded/Healthy` combines the sync phase and the
//!   health status as the normative table says.
//! - Anything unrecognised becomes [`DeploymentStatus::Unknown`]; normalization never fails.
//! - Words that mean "waiting" become `pending`, words that mean "working" become `running`.
//!
//! [`DeploymentStatus::outcome`] projects a status onto the four standard values of the
//! Hivel-compatible API (`success`, `failed`, `canceled`, `unknown`); that projection is what
//! its normative mapping table describes, and the tests check every row of it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The status of a deployment, whatever the provider called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeploymentStatus {
    /// Accepted or queued, not started yet (also: waiting for approval or a resource).
    Pending,
    /// Started and not finished.
    Running,
    /// Finished successfully.
    Success,
    /// Finished unsuccessfully (failure, error, time-out, degraded).
    Failed,
    /// Stopped by a person or a policy before it finished.
    Cancelled,
    /// The provider's word says nothing about success (skipped, neutral, partially succeeded,
    /// or a word shiplog does not know).
    Unknown,
}

impl DeploymentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Cancelled,
        Self::Unknown,
    ];

    /// The status as shiplog writes it (`pending`, `running`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    /// Strict parse of shiplog's own spelling (for query filters); provider words go through
    /// [`normalize`] instead.
    pub fn parse(value: &str) -> Result<Self, InvalidStatus> {
        let wanted = value.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| InvalidStatus {
                given: value.to_owned(),
            })
    }

    /// Whether the deployment has finished: `success`, `failed` or `cancelled`.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Cancelled)
    }

    /// The four-value outcome of a finished run, as the Hivel-compatible API reports it.
    pub const fn outcome(self) -> Outcome {
        match self {
            Self::Success => Outcome::Success,
            Self::Failed => Outcome::Failed,
            Self::Cancelled => Outcome::Canceled,
            Self::Pending | Self::Running | Self::Unknown => Outcome::Unknown,
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status filter that is not one of shiplog's six statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {given:?}: use one of pending, running, success, failed, cancelled, unknown"
)]
pub struct InvalidStatus {
    /// What was sent.
    pub given: String,
}

/// The four standard values of a completed run (Hivel's vocabulary, hence `canceled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Finished successfully.
    Success,
    /// Finished unsuccessfully.
    Failed,
    /// Stopped before it finished.
    Canceled,
    /// Not finished, or nothing known about the result.
    Unknown,
}

impl Outcome {
    /// The value as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
        }
    }
}

/// The CI/CD system that reported a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// GitHub Actions workflow runs, jobs and GitHub deployment statuses.
    GithubActions,
    /// GitLab CI jobs, pipelines and deployments.
    GitlabCi,
    /// Jenkins build results.
    Jenkins,
    /// CircleCI jobs and workflows.
    CircleCi,
    /// Argo Workflows node and workflow phases.
    ArgoWorkflows,
    /// Azure DevOps build results and statuses, release environment statuses.
    AzureDevops,
    /// Argo CD sync operation phase and application health.
    ArgoCd,
    /// Bitbucket Pipelines states and build statuses.
    BitbucketPipelines,
    /// Anything else, including the documented value `custom`.
    Custom,
}

impl Provider {
    /// Every provider, in the order the documentation lists them.
    pub const ALL: [Self; 9] = [
        Self::GithubActions,
        Self::GitlabCi,
        Self::Jenkins,
        Self::CircleCi,
        Self::ArgoWorkflows,
        Self::AzureDevops,
        Self::ArgoCd,
        Self::BitbucketPipelines,
        Self::Custom,
    ];

    /// Reads an `X-CI-Provider`-style value. Never fails: anything unrecognised is `Custom`.
    pub fn parse(value: &str) -> Self {
        match squash(value).as_str() {
            "githubactions" | "githubaction" | "github" | "gha" => Self::GithubActions,
            "gitlabci" | "gitlab" => Self::GitlabCi,
            "jenkins" => Self::Jenkins,
            "circleci" | "circle" => Self::CircleCi,
            "argoworkflows" | "argoworkflow" | "argo" => Self::ArgoWorkflows,
            "azuredevops" | "azurepipelines" | "azure" | "ado" | "vsts" => Self::AzureDevops,
            "argocd" => Self::ArgoCd,
            "bitbucketpipelines" | "bitbucket" => Self::BitbucketPipelines,
            _ => Self::Custom,
        }
    }

    /// The canonical name (`github-actions`, `gitlab-ci`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GithubActions => "github-actions",
            Self::GitlabCi => "gitlab-ci",
            Self::Jenkins => "jenkins",
            Self::CircleCi => "circleci",
            Self::ArgoWorkflows => "argo-workflows",
            Self::AzureDevops => "azure-devops",
            Self::ArgoCd => "argo-cd",
            Self::BitbucketPipelines => "bitbucket-pipelines",
            Self::Custom => "custom",
        }
    }

    /// A human name for documentation.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::GithubActions => "GitHub Actions",
            Self::GitlabCi => "GitLab CI",
            Self::Jenkins => "Jenkins",
            Self::CircleCi => "CircleCI",
            Self::ArgoWorkflows => "Argo Workflows",
            Self::AzureDevops => "Azure DevOps",
            Self::ArgoCd => "Argo CD",
            Self::BitbucketPipelines => "Bitbucket Pipelines",
            Self::Custom => "Generic words (custom providers and the compat APIs)",
        }
    }

    /// The provider's own words, in its own spelling.
    pub const fn words(self) -> &'static [(&'static str, DeploymentStatus)] {
        match self {
            Self::GithubActions => GITHUB_ACTIONS,
            Self::GitlabCi => GITLAB_CI,
            Self::Jenkins => JENKINS,
            Self::CircleCi => CIRCLECI,
            Self::ArgoWorkflows => ARGO_WORKFLOWS,
            Self::AzureDevops => AZURE_DEVOPS,
            Self::ArgoCd => ARGO_CD,
            Self::BitbucketPipelines => BITBUCKET,
            Self::Custom => GENERIC,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Shown as its canonical name: one of [`Provider::ALL`] by [`Provider::as_str`].
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Provider {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.map(Self::as_str)))
            .description(Some("The CI/CD system that reported the status"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Provider {}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Self::parse(&raw))
    }
}

/// A status as reported, kept beside what shiplog made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// Who reported it.
    pub provider: Provider,
    /// The provider's word, trimmed, otherwise as sent.
    pub raw: String,
    /// The normalized status.
    pub status: DeploymentStatus,
}

impl ProviderStatus {
    /// Normalizes `raw` as reported by `provider`.
    pub fn new(provider: Provider, raw: &str) -> Self {
        Self {
            provider,
            raw: raw.trim().to_owned(),
            status: normalize(provider, raw),
        }
    }
}

use DeploymentStatus::{Cancelled, Failed, Pending, Running, Success, Unknown};

const GITHUB_ACTIONS: &[(&str, DeploymentStatus)] = &[
    ("success", Success),
    ("failure", Failed),
    ("timed_out", Failed),
    ("startup_failure", Failed),
    ("error", Failed),
    ("cancelled", Cancelled),
    ("canceled", Cancelled),
    ("neutral", Unknown),
    ("skipped", Unknown),
    ("stale", Unknown),
    ("action_required", Unknown),
    ("inactive", Unknown),
    ("completed", Unknown),
    ("queued", Pending),
    ("pending", Pending),
    ("waiting", Pending),
    ("requested", Pending),
    ("in_progress", Running),
];

const GITLAB_CI: &[(&str, DeploymentStatus)] = &[
    ("success", Success),
    ("failed", Failed),
    ("canceled", Cancelled),
    ("skipped", Unknown),
    ("created", Pending),
    ("waiting_for_resource", Pending),
    ("preparing", Pending),
    ("pending", Pending),
    ("scheduled", Pending),
    ("manual", Pending),
    ("waiting_for_callback", Pending),
    ("blocked", Pending),
    ("running", Running),
    ("canceling", Running),
];

const JENKINS: &[(&str, DeploymentStatus)] = &[
    ("SUCCESS", Success),
    ("FAILURE", Failed),
    ("UNSTABLE", Failed),
    ("ABORTED", Cancelled),
    ("NOT_BUILT", Unknown),
    ("QUEUED", Pending),
    ("PAUSED", Pending),
    ("IN_PROGRESS", Running),
    ("RUNNING", Running),
    ("BUILDING", Running),
];

const CIRCLECI: &[(&str, DeploymentStatus)] = &[
    ("success", Success),
    ("failed", Failed),
    ("timedout", Failed),
    ("infrastructure_fail", Failed),
    ("error", Failed),
    ("unauthorized", Failed),
    ("canceled", Cancelled),
    ("not_run", Unknown),
    ("retried", Unknown),
    ("on_hold", Pending),
    ("queued", Pending),
    ("not_running", Pending),
    ("blocked", Pending),
    ("running", Running),
    ("failing", Running),
];

const ARGO_WORKFLOWS: &[(&str, DeploymentStatus)] = &[
    ("Succeeded", Success),
    ("Failed", Failed),
    ("Error", Failed),
    ("Skipped", Unknown),
    ("Omitted", Unknown),
    ("Pending", Pending),
    ("Running", Running),
];

const AZURE_DEVOPS: &[(&str, DeploymentStatus)] = &[
    ("succeeded", Success),
    ("failed", Failed),
    ("canceled", Cancelled),
    ("rejected", Cancelled),
    ("partiallySucceeded", Unknown),
    ("succeededWithIssues", Unknown),
    ("skipped", Unknown),
    ("completed", Unknown),
    ("none", Unknown),
    ("notStarted", Pending),
    ("postponed", Pending),
    ("queued", Pending),
    ("scheduled", Pending),
    ("inProgress", Running),
    ("cancelling", Running),
];

/// Single Argo CD words. Pairs (phase + health) go through [`argo_cd`].
const ARGO_CD: &[(&str, DeploymentStatus)] = &[
    ("Succeeded", Success),
    ("Healthy", Success),
    ("Failed", Failed),
    ("Error", Failed),
    ("Degraded", Failed),
    ("Missing", Unknown),
    ("Suspended", Unknown),
    ("Unknown", Unknown),
    ("Running", Running),
    ("Terminating", Running),
    ("Progressing", Running),
];

const BITBUCKET: &[(&str, DeploymentStatus)] = &[
    ("SUCCESSFUL", Success),
    ("FAILED", Failed),
    ("ERROR", Failed),
    ("STOPPED", Cancelled),
    ("EXPIRED", Unknown),
    ("PENDING", Pending),
    ("PAUSED", Pending),
    ("HALTED", Pending),
    ("INPROGRESS", Running),
    ("RUNNING", Running),
];

/// The compat APIs' words (`pending, running, success, failure, failed, cancelled, canceled,
/// unknown`) and the common synonyms custom pipelines send.
const GENERIC: &[(&str, DeploymentStatus)] = &[
    ("success", Success),
    ("succeeded", Success),
    ("successful", Success),
    ("passed", Success),
    ("ok", Success),
    ("done", Success),
    ("deployed", Success),
    ("failure", Failed),
    ("failed", Failed),
    ("error", Failed),
    ("errored", Failed),
    ("broken", Failed),
    ("cancelled", Cancelled),
    ("canceled", Cancelled),
    ("aborted", Cancelled),
    ("stopped", Cancelled),
    ("unknown", Unknown),
    ("skipped", Unknown),
    ("pending", Pending),
    ("queued", Pending),
    ("waiting", Pending),
    ("scheduled", Pending),
    ("running", Running),
    ("started", Running),
    ("in_progress", Running),
    ("deploying", Running),
];

/// Lower-cases ASCII and drops the separators providers disagree about.
fn squash(value: &str) -> String {
    value
        .trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lookup(table: &[(&str, DeploymentStatus)], squashed: &str) -> Option<DeploymentStatus> {
    table
        .iter()
        .find(|(word, _)| squash(word) == squashed)
        .map(|(_, status)| *status)
}

/// Whether a provider's word says its run is over: the one rule every provider adapter uses to
/// tell a start from a finish, read from [`normalize`] (a success, a failure or a
/// cancellation). A word that says nothing about the outcome (`skipped`, `neutral`) is not a
/// finish: a later event still settles the run.
///
/// ```
/// use shiplog_domain::status::{Provider, finished};
/// assert!(finished(Provider::GitlabCi, "failed"));
/// assert!(finished(Provider::GithubActions, "Error"));
/// assert!(!finished(Provider::GitlabCi, "skipped"));
/// assert!(!finished(Provider::ArgoCd, "Running"));
/// ```
pub fn finished(provider: Provider, raw: &str) -> bool {
    normalize(provider, raw).is_terminal()
}

/// Normalizes a provider's status word. Total: unrecognised input is [`DeploymentStatus::Unknown`].
///
/// The provider's own table is read first, then the generic words, then every other
/// provider's; case, spaces, `-` and `_` do not matter.
///
/// ```
/// use shiplog_domain::status::{DeploymentStatus, Provider, normalize};
/// assert_eq!(normalize(Provider::GitlabCi, "canceled"), DeploymentStatus::Cancelled);
/// assert_eq!(normalize(Provider::parse("jenkins"), "UNSTABLE"), DeploymentStatus::Failed);
/// assert_eq!(normalize(Provider::GithubActions, "in_progress"), DeploymentStatus::Running);
/// assert_eq!(normalize(Provider::GithubActions, "no such word"), DeploymentStatus::Unknown);
/// ```
pub fn normalize(provider: Provider, raw: &str) -> DeploymentStatus {
    let squashed = squash(raw);
    if squashed.is_empty() {
        return Unknown;
    }
    let own = provider.words();
    let found = lookup(own, &squashed)
        .or_else(|| lookup(GENERIC, &squashed))
        .or_else(|| {
            Provider::ALL
                .iter()
                .find_map(|other| lookup(other.words(), &squashed))
        });
    found
        .or_else(|| argo_cd_pair(raw))
        .unwrap_or(DeploymentStatus::Unknown)
}

const ARGO_CD_PHASES: &[&str] = &["succeeded", "failed", "error", "running", "terminating"];
const ARGO_CD_HEALTH: &[&str] = &[
    "healthy",
    "degraded",
    "progressing",
    "missing",
    "suspended",
    "unknown",
];

/// Reads `Succeeded/Healthy`, `Succeeded Healthy`, `phase=Failed,health=Degraded` and the like.
fn argo_cd_pair(raw: &str) -> Option<DeploymentStatus> {
    let words: Vec<String> = raw
        .split(|c: char| matches!(c, '/' | ',' | ';' | '+' | ':' | '=' | '|') || c.is_whitespace())
        .map(|w| w.to_ascii_lowercase())
        .filter(|w| !w.is_empty() && !matches!(w.as_str(), "phase" | "health" | "sync" | "status"))
        .collect();
    let [first, second] = words.as_slice() else {
        return None;
    };
    let (phase, health) = if ARGO_CD_PHASES.contains(&first.as_str()) {
        (first, second)
    } else {
        (second, first)
    };
    (ARGO_CD_PHASES.contains(&phase.as_str()) && ARGO_CD_HEALTH.contains(&health.as_str()))
        .then(|| argo_cd(phase, health))
}

/// Argo CD's combined rule: `Failed`/`Error` phase or `Degraded` health → failed; `Succeeded`
/// and `Healthy` → success; a running operation or `Progressing` health → running; anything
/// else (`Missing`, `Suspended`, `Unknown` health after a sync) → unknown.
pub fn argo_cd(phase: &str, health: &str) -> DeploymentStatus {
    let phase = squash(phase);
    let health = squash(health);
    if matches!(phase.as_str(), "failed" | "error") || health == "degraded" {
        Failed
    } else if phase == "succeeded" && health == "healthy" {
        Success
    } else if matches!(phase.as_str(), "running" | "terminating") || health == "progressing" {
        Running
    } else {
        Unknown
    }
}

/// The full mapping matrix as Markdown; `docs/status-normalization.md` is exactly this text
/// (`cargo xtask codegen` writes it, a test compares it).
pub fn matrix_markdown() -> String {
    let mut out = String::from(
        "# Status normalization\n\n\
         <!-- Generated by `cargo xtask codegen` from crates/domain/src/status.rs. Do not edit. -->\n\n\
         Every status word a pipeline sends is kept as sent (`provider_status`) and normalized to one of\n\
         shiplog's six statuses: `pending`, `running`, `success`, `failed`, `cancelled`, `unknown`.\n\
         The Hivel-compatible API reports the four-value *outcome* of a completed run\n\
         (`success`, `failed`, `canceled`, `unknown`): `pending` and `running` have the outcome `unknown`.\n\n\
         ## How a word is matched\n\n\
         1. Leading and trailing spaces are trimmed; case is ignored; `_`, `-`, `.` and inner spaces are\n\
         \x20  ignored, so `in_progress`, `inProgress`, `IN-PROGRESS` and `in progress` are the same word.\n\
         2. The table of the provider named by the request (`X-CI-Provider`, or the API's own) is read first,\n\
         \x20  then the generic words, then every other provider's table. No two tables disagree about a word,\n\
         \x20  so a pipeline that names no provider, or an unknown one, gets the same answer.\n\
         3. A two-word Argo CD value (`Succeeded/Healthy`, `Failed Degraded`, `phase=Running,health=Progressing`)\n\
         \x20  combines sync phase and health (see the Argo CD section).\n\
         4. Anything else becomes `unknown`. Normalization never rejects a request.\n\n\
         In a deployment's lifecycle, `success`, `failed` and `cancelled` are terminal: a later `pending` or\n\
         `running` never replaces them, and a terminal status is replaced only by a later terminal one (a re-run).\n",
    );
    for provider in Provider::ALL {
        out.push_str(&format!(
            "\n## {} (`{}`)\n\n| word | status | outcome |\n|---|---|---|\n",
            provider.display_name(),
            provider.as_str()
        ));
        for (word, status) in provider.words() {
            out.push_str(&format!(
                "| `{word}` | `{}` | `{}` |\n",
                status.as_str(),
                status.outcome().as_str()
            ));
        }
        if provider == Provider::ArgoCd {
            out.push_str(
                "\nA sync phase and a health status sent together combine, in this order of precedence:\n\n\
                 | phase | health | status |\n|---|---|---|\n\
                 | `Failed` or `Error` | any | `failed` |\n\
                 | any | `Degraded` | `failed` |\n\
                 | `Succeeded` | `Healthy` | `success` |\n\
                 | `Running` or `Terminating` | any other | `running` |\n\
                 | any other | `Progressing` | `running` |\n\
                 | `Succeeded` | `Missing`, `Suspended`, `Unknown` | `unknown` |\n",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Section 6 of the Hivel document, row by row: (provider, word, expected outcome).
    const NORMATIVE: &[(Provider, &str, Outcome)] = &[
        (Provider::Jenkins, "SUCCESS", Outcome::Success),
        (Provider::Jenkins, "FAILURE", Outcome::Failed),
        (Provider::Jenkins, "UNSTABLE", Outcome::Failed),
        (Provider::Jenkins, "ABORTED", Outcome::Canceled),
        (Provider::Jenkins, "NOT_BUILT", Outcome::Unknown),
        (Provider::GithubActions, "success", Outcome::Success),
        (Provider::GithubActions, "failure", Outcome::Failed),
        (Provider::GithubActions, "timed_out", Outcome::Failed),
        (Provider::GithubActions, "canceled", Outcome::Canceled),
        (Provider::GithubActions, "neutral", Outcome::Unknown),
        (Provider::GithubActions, "skipped", Outcome::Unknown),
        (Provider::GithubActions, "stale", Outcome::Unknown),
        (Provider::GithubActions, "action_required", Outcome::Unknown),
        (Provider::GithubActions, "in_progress", Outcome::Unknown),
        (Provider::GithubActions, "queued", Outcome::Unknown),
        (Provider::GitlabCi, "success", Outcome::Success),
        (Provider::GitlabCi, "failed", Outcome::Failed),
        (Provider::GitlabCi, "canceled", Outcome::Canceled),
        (Provider::GitlabCi, "manual", Outcome::Unknown),
        (Provider::GitlabCi, "skipped", Outcome::Unknown),
        (Provider::GitlabCi, "pending", Outcome::Unknown),
        (Provider::GitlabCi, "running", Outcome::Unknown),
        (Provider::CircleCi, "success", Outcome::Success),
        (Provider::CircleCi, "failed", Outcome::Failed),
        (Provider::CircleCi, "timedout", Outcome::Failed),
        (Provider::CircleCi, "infrastructure_fail", Outcome::Failed),
        (Provider::CircleCi, "canceled", Outcome::Canceled),
        (Provider::CircleCi, "not_run", Outcome::Unknown),
        (Provider::CircleCi, "on_hold", Outcome::Unknown),
        (Provider::CircleCi, "queued", Outcome::Unknown),
        (Provider::CircleCi, "running", Outcome::Unknown),
        (Provider::ArgoWorkflows, "Succeeded", Outcome::Success),
        (Provider::ArgoWorkflows, "Failed", Outcome::Failed),
        (Provider::ArgoWorkflows, "Error", Outcome::Failed),
        (Provider::ArgoWorkflows, "Skipped", Outcome::Unknown),
        (Provider::ArgoWorkflows, "Omitted", Outcome::Unknown),
        (Provider::ArgoWorkflows, "Pending", Outcome::Unknown),
        (Provider::ArgoWorkflows, "Running", Outcome::Unknown),
        (Provider::AzureDevops, "succeeded", Outcome::Success),
        (Provider::AzureDevops, "failed", Outcome::Failed),
        (Provider::AzureDevops, "canceled", Outcome::Canceled),
        (
            Provider::AzureDevops,
            "partiallySucceeded",
            Outcome::Unknown,
        ),
        (
            Provider::AzureDevops,
            "succeededWithIssues",
            Outcome::Unknown,
        ),
        (Provider::ArgoCd, "Succeeded/Healthy", Outcome::Success),
        (Provider::ArgoCd, "Failed/Healthy", Outcome::Failed),
        (Provider::ArgoCd, "Error/Healthy", Outcome::Failed),
        (Provider::ArgoCd, "Succeeded/Degraded", Outcome::Failed),
        (Provider::ArgoCd, "Running", Outcome::Unknown),
        (Provider::ArgoCd, "Progressing", Outcome::Unknown),
        (Provider::ArgoCd, "Missing", Outcome::Unknown),
        (Provider::ArgoCd, "Suspended", Outcome::Unknown),
        (Provider::ArgoCd, "Succeeded/Missing", Outcome::Unknown),
        (Provider::ArgoCd, "Succeeded/Suspended", Outcome::Unknown),
        (Provider::Custom, "whatever-this-is", Outcome::Unknown),
    ];

    #[test]
    fn every_row_of_the_normative_table_holds() {
        for (provider, word, expected) in NORMATIVE {
            assert_eq!(
                normalize(*provider, word).outcome(),
                *expected,
                "{provider} {word:?}"
            );
        }
    }

    #[test]
    fn in_progress_words_become_pending_or_running_not_unknown() {
        let cases = [
            (Provider::GithubActions, "queued", Pending),
            (Provider::GithubActions, "in_progress", Running),
            (Provider::GitlabCi, "pending", Pending),
            (Provider::GitlabCi, "running", Running),
            (Provider::GitlabCi, "manual", Pending),
            (Provider::CircleCi, "on_hold", Pending),
            (Provider::AzureDevops, "inProgress", Running),
            (Provider::AzureDevops, "notStarted", Pending),
            (Provider::BitbucketPipelines, "INPROGRESS", Running),
            (Provider::ArgoCd, "Progressing", Running),
            (Provider::Jenkins, "RUNNING", Running),
        ];
        for (provider, word, expected) in cases {
            assert_eq!(normalize(provider, word), expected, "{provider} {word:?}");
        }
    }

    #[test]
    fn github_deployment_states_are_all_known() {
        let cases = [
            ("error", Failed),
            ("failure", Failed),
            ("inactive", Unknown),
            ("in_progress", Running),
            ("queued", Pending),
            ("pending", Pending),
            ("success", Success),
        ];
        for (word, expected) in cases {
            assert_eq!(normalize(Provider::GithubActions, word), expected, "{word}");
        }
    }

    #[test]
    fn the_seeds_generic_words_map_without_a_provider() {
        let cases = [
            ("pending", Pending),
            ("running", Running),
            ("success", Success),
            ("failure", Failed),
            ("failed", Failed),
            ("cancelled", Cancelled),
            ("canceled", Cancelled),
            ("unknown", Unknown),
        ];
        for (word, expected) in cases {
            assert_eq!(normalize(Provider::Custom, word), expected, "{word}");
        }
    }

    #[test]
    fn matching_ignores_case_spacing_and_separators() {
        for word in ["in_progress", "IN-PROGRESS", "  In Progress ", "inProgress"] {
            assert_eq!(normalize(Provider::Custom, word), Running, "{word:?}");
        }
        assert_eq!(normalize(Provider::Custom, " SUCCESS\n"), Success);
        assert_eq!(normalize(Provider::Custom, ""), Unknown);
        assert_eq!(normalize(Provider::Custom, "   "), Unknown);
    }

    #[test]
    fn an_unknown_provider_still_maps_any_providers_word() {
        assert_eq!(normalize(Provider::parse("teamcity"), "UNSTABLE"), Failed);
        assert_eq!(normalize(Provider::Custom, "partiallySucceeded"), Unknown);
        assert_eq!(normalize(Provider::Custom, "infrastructure_fail"), Failed);
        assert_eq!(normalize(Provider::Custom, "Succeeded/Healthy"), Success);
    }

    #[test]
    fn no_two_tables_disagree_about_a_word() {
        let mut seen: Vec<(String, DeploymentStatus, Provider)> = Vec::new();
        for provider in Provider::ALL {
            for (word, status) in provider.words() {
                let key = squash(word);
                if let Some((_, other, who)) = seen.iter().find(|(k, _, _)| *k == key) {
                    assert_eq!(
                        other, status,
                        "{word:?}: {who} says {other}, {provider} says {status}"
                    );
                }
                seen.push((key, *status, provider));
            }
        }
    }

    #[test]
    fn every_table_word_normalizes_to_its_own_row_under_any_provider() {
        for owner in Provider::ALL {
            for (word, status) in owner.words() {
                for asker in Provider::ALL {
                    assert_eq!(normalize(asker, word), *status, "{asker} asked {word:?}");
                }
            }
        }
    }

    #[test]
    fn argo_cd_pairs_combine_in_either_order_and_spelling() {
        assert_eq!(normalize(Provider::ArgoCd, "Healthy/Succeeded"), Success);
        assert_eq!(
            normalize(Provider::ArgoCd, "phase=Failed, health=Healthy"),
            Failed
        );
        assert_eq!(normalize(Provider::ArgoCd, "Running Progressing"), Running);
        assert_eq!(
            normalize(Provider::ArgoCd, "Succeeded Progressing"),
            Running
        );
        assert_eq!(normalize(Provider::ArgoCd, "banana/Healthy"), Unknown);
        assert_eq!(argo_cd("Terminating", "Healthy"), Running);
    }

    #[test]
    fn provider_names_parse_leniently_and_round_trip() {
        assert_eq!(Provider::parse("github-actions"), Provider::GithubActions);
        assert_eq!(Provider::parse("GitLab CI"), Provider::GitlabCi);
        assert_eq!(Provider::parse("circleci"), Provider::CircleCi);
        assert_eq!(Provider::parse("custom"), Provider::Custom);
        assert_eq!(Provider::parse("something-else"), Provider::Custom);
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()), provider);
        }
    }

    #[test]
    fn provider_status_keeps_the_raw_word() {
        let status = ProviderStatus::new(Provider::Jenkins, "  UNSTABLE ");
        assert_eq!(status.raw, "UNSTABLE");
        assert_eq!(status.status, Failed);
    }

    #[test]
    fn strict_parse_accepts_only_shiplogs_spelling() {
        assert_eq!(DeploymentStatus::parse("Success"), Ok(Success));
        let err = DeploymentStatus::parse("failure").unwrap_err();
        assert!(err.to_string().contains("use one of pending, running"));
        for status in DeploymentStatus::ALL {
            assert_eq!(DeploymentStatus::parse(status.as_str()), Ok(status));
        }
    }

    #[test]
    fn only_success_failed_and_cancelled_are_terminal() {
        let terminal: Vec<_> = DeploymentStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, vec![Success, Failed, Cancelled]);
    }
}
