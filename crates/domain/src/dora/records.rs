//! What the metrics are computed from: deployment and incident records, the window, and
//! what a deployment says of itself as rework.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::MICROS_PER_DAY;
use crate::timestamp::Timestamp;

/// How a finished deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraOutcome))]
pub enum Outcome {
    /// It failed.
    Failed,
    /// It succeeded.
    Succeeded,
}

impl Outcome {
    /// The outcome as the API writes it (`failed`, `succeeded`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Succeeded => "succeeded",
        }
    }
}

/// One finished deployment, as the metrics need it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeploymentRecord {
    /// Its id: records with the same id are one deployment.
    pub id: String,
    /// Its application (any stable identifier; shared, since many records name one).
    pub application: Arc<str>,
    /// Its environment (any stable identifier; shared, since many records name one).
    pub environment: Arc<str>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it finished.
    pub finished_at: Timestamp,
    /// Whether it names a commit.
    pub has_commit: bool,
    /// The commit's earliest known time, when it has one and it is known.
    pub commit_time: Option<Timestamp>,
    /// When it started, if known (else its finish stands for it).
    pub started_at: Option<Timestamp>,
    /// What it says of itself as rework ([`rework_signal`]): marked by its sender, a hotfix
    /// branch or ref, a revert.
    pub rework: Option<ReworkReason>,
}

/// Why a deployment is rework: unplanned, made because of a problem in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReworkReason {
    /// Its sender marked it so.
    Marked,
    /// Its branch or ref matches a hotfix pattern.
    HotfixRef,
    /// Its commit message starts with `Revert "`.
    Revert,
    /// An incident of its application and environment was open when it started.
    OpenIncident,
    /// A failure (a failed deployment not yet followed by a success) of its application and
    /// environment was open when it started.
    OpenFailure,
}

impl ReworkReason {
    /// Every reason, in order of precedence.
    pub const ALL: [Self; 5] = [
        Self::Marked,
        Self::HotfixRef,
        Self::Revert,
        Self::OpenIncident,
        Self::OpenFailure,
    ];

    /// The reason as the API writes it (`hotfix_ref`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Marked => "marked",
            Self::HotfixRef => "hotfix_ref",
            Self::Revert => "revert",
            Self::OpenIncident => "open_incident",
            Self::OpenFailure => "open_failure",
        }
    }

    /// Reads what [`ReworkReason::as_str`] writes.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The reason in words.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Marked => "its sender marked it as rework",
            Self::HotfixRef => "its branch or ref is a hotfix",
            Self::Revert => "its commit reverts another",
            Self::OpenIncident => "it started while an incident was open",
            Self::OpenFailure => "it started while a failed deployment was not yet recovered",
        }
    }
}

/// The hotfix patterns when a project sets none: `*` matches any run of characters.
pub const DEFAULT_HOTFIX_PATTERNS: [&str; 3] = ["hotfix/*", "hotfix-*", "revert-*"];

/// What a deployment says of itself as rework, in this order: its sender's mark, its branch
/// (or its ref without `refs/heads/` or `refs/tags/`) matching one of `patterns`, a commit
/// message starting with `Revert "` (Git's own revert message).
pub fn rework_signal(
    marked: bool,
    branch: Option<&str>,
    git_ref: Option<&str>,
    message: Option<&str>,
    patterns: &[&str],
) -> Option<ReworkReason> {
    if marked {
        return Some(ReworkReason::Marked);
    }
    let short_ref = git_ref.map(|r| {
        r.strip_prefix("refs/heads/")
            .or_else(|| r.strip_prefix("refs/tags/"))
            .unwrap_or(r)
    });
    let hotfix = [branch, short_ref]
        .into_iter()
        .flatten()
        .any(|name| patterns.iter().any(|pattern| glob(pattern, name)));
    if hotfix {
        return Some(ReworkReason::HotfixRef);
    }
    message
        .filter(|m| m.trim_start().starts_with("Revert \""))
        .map(|_| ReworkReason::Revert)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included).
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = rest.get(at + piece.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// How long before an incident opened its deployment is looked for, when it names none.
pub const DEFAULT_LINK_HOURS: u32 = 24;

/// What an incident names as its cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Blame {
    /// Nothing: the last successful deployment of its place within the link window before it
    /// opened is linked.
    Unnamed,
    /// One deployment, by id.
    Deployment(String),
    /// A commit or a reference: the deployments that carry it. At each place the last of them
    /// finished by the incident's opening is linked.
    Carriers(Vec<Carrier>),
}

/// A deployment that carries a blamed commit or reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Carrier {
    /// Its id.
    pub id: String,
    /// Its application.
    pub application: String,
    /// Its environment.
    pub environment: String,
    /// When it finished.
    pub finished_at: Timestamp,
}

/// One incident, as the metrics need it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncidentRecord {
    /// Its id: records with the same id are one incident.
    pub id: String,
    /// What broke (shown in explanations).
    pub title: String,
    /// The applications it is about (a whole project's are all of them); `None`: any.
    pub applications: Option<Vec<String>>,
    /// Its environment; `None`: any environment counted.
    pub environment: Option<String>,
    /// When it opened.
    pub opened_at: Timestamp,
    /// When it was resolved; `None` while open.
    pub resolved_at: Option<Timestamp>,
    /// What it names as its cause.
    pub blame: Blame,
}

impl IncidentRecord {
    pub(super) fn covers(&self, application: &str, environment: &str) -> bool {
        self.applications
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == application))
            && self.environment.as_deref().is_none_or(|e| e == environment)
    }
}

/// How an incident came to be linked to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentLink {
    /// The incident names it, its commit or one of its references.
    Named,
    /// The incident names nothing, and this was the last successful deployment of its place
    /// within the link window before it opened.
    LastSuccess,
}

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraWindow))]
pub struct Window {
    /// Its start (included).
    pub from: Timestamp,
    /// Its end (excluded).
    pub to: Timestamp,
}

impl Window {
    /// A window; `None` unless `from < to`.
    pub fn new(from: Timestamp, to: Timestamp) -> Option<Self> {
        (from < to).then_some(Self { from, to })
    }

    /// The `days` days up to `to`; `None` if that starts before the representable range.
    pub fn days_before(to: Timestamp, days: u32) -> Option<Self> {
        let from = to
            .unix_micros()
            .checked_sub(i64::from(days) * MICROS_PER_DAY)?;
        Self::new(Timestamp::from_unix_micros(from).ok()?, to)
    }

    /// Its length in days.
    pub fn days(self) -> f64 {
        self.micros() as f64 / MICROS_PER_DAY as f64
    }

    pub(super) fn micros(self) -> i64 {
        self.to.unix_micros() - self.from.unix_micros()
    }
}
