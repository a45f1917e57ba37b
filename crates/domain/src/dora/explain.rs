//! The deployments, failures and incidents behind each figure of a report.

use serde::Serialize;

use super::{History, IncidentLink, Lead, Outcome, ReworkReason, Window, seconds};
use crate::timestamp::Timestamp;

/// Why a successful deployment has no lead time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LeadExclusion {
    /// It names no commit.
    NoCommit,
    /// Nothing but the deployment itself tells when its commit was made.
    NoCommitTime,
    /// Its commit's time is after its finish.
    CommitAfterDeployment,
}

impl LeadExclusion {
    /// The reason as the API writes it (`no_commit`, `no_commit_time`,
    /// `commit_after_deployment`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoCommit => "no_commit",
            Self::NoCommitTime => "no_commit_time",
            Self::CommitAfterDeployment => "commit_after_deployment",
        }
    }

    /// The reason in words.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NoCommit => "it names no commit",
            Self::NoCommitTime => {
                "nothing but the deployment itself tells when its commit was made"
            }
            Self::CommitAfterDeployment => "its commit's time is after its finish (clock skew)",
        }
    }
}

/// One deployment of a window, and how each metric counted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraDeployment))]
pub struct Explained {
    /// Its id.
    pub id: String,
    /// When it finished.
    pub finished_at: Timestamp,
    /// How it ended: a success counts in the frequency and lead time.
    pub outcome: Outcome,
    /// Whether the change failure rate counts it as failed: it failed, or an incident is
    /// linked to it.
    pub counts_as_failure: bool,
    /// The incidents linked to it (their ids), each with how.
    pub incidents: Vec<ExplainedLink>,
    /// A success's lead time in seconds; `None` for a failure or an excluded success.
    pub lead_time_seconds: Option<f64>,
    /// Why a success has no lead time.
    pub lead_time_excluded: Option<LeadExclusion>,
    /// Why the rework rate counts it as rework; `None`: it is not.
    pub rework: Option<ReworkReason>,
}

/// An incident linked to a deployment, or a deployment linked to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraLink))]
pub struct ExplainedLink {
    /// The other side's id.
    pub id: String,
    /// How they were linked.
    pub link: IncidentLink,
}

/// One incident of a window: opened in it, or linked to one of its deployments.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraIncident))]
pub struct ExplainedIncident {
    /// Its id.
    pub id: String,
    /// What broke.
    pub title: String,
    /// When it opened.
    pub opened_at: Timestamp,
    /// When it was resolved; `None`: still open.
    pub resolved_at: Option<Timestamp>,
    /// Whether the recovery time counts it (it opened in the window): as a sample when resolved,
    /// as excluded while open.
    pub in_recovery_time: bool,
    /// Opening to resolution in seconds, when resolved.
    pub recovery_seconds: Option<f64>,
    /// The deployments linked to it, each with how; such a deployment counts as failed.
    pub deployments: Vec<ExplainedLink>,
}

/// One failure of a window: a run of failed deployments whose first is in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraFailure))]
pub struct ExplainedFailure {
    /// The deployment whose failure started it.
    pub first_failure: String,
    /// When that failure finished.
    pub started_at: Timestamp,
    /// The success that ended it; `None`: not recovered yet (excluded from recovery time).
    pub recovered_by: Option<String>,
    /// Its recovery time in seconds, when recovered.
    pub recovery_seconds: Option<f64>,
}

/// The deployments and incidents behind a window's report, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraExplanation))]
pub struct Explanation {
    /// Every deployment the report counted or excluded.
    pub deployments: Vec<Explained>,
    /// Every failure (run of failed deployments) the recovery time counted or excluded.
    pub failures: Vec<ExplainedFailure>,
    /// Every incident the recovery time counted or excluded, or linked to a deployment of the
    /// window.
    pub incidents: Vec<ExplainedIncident>,
}

impl History {
    /// The deployments, failures and incidents behind [`History::report`] for the same window,
    /// newest first, each with how it was counted: the same selection and the same
    /// classification as the report, so every figure can be traced to what it came from.
    pub fn explain(&self, window: Window) -> Explanation {
        let id = |index: usize| self.ids.get(index).cloned().unwrap_or_default();
        let at = |index: usize| {
            self.entries
                .get(index)
                .and_then(|e| Timestamp::from_unix_micros(e.at).ok())
                .unwrap_or(Timestamp::UNIX_EPOCH)
        };
        let outage_id = |index: usize| {
            self.outages
                .get(index)
                .map(|o| o.record.id.clone())
                .unwrap_or_default()
        };
        let range = self.in_window(window);
        let deployments = range
            .clone()
            .rev()
            .filter_map(|index| {
                let entry = self.entries.get(index)?;
                let (lead_time_seconds, lead_time_excluded) = match (entry.outcome, entry.lead) {
                    (Outcome::Failed, _) => (None, None),
                    (Outcome::Succeeded, Lead::Micros(micros)) => (Some(seconds(micros)), None),
                    (Outcome::Succeeded, Lead::NoCommit) => (None, Some(LeadExclusion::NoCommit)),
                    (Outcome::Succeeded, Lead::NoCommitTime) => {
                        (None, Some(LeadExclusion::NoCommitTime))
                    }
                    (Outcome::Succeeded, Lead::CommitAfterDeployment) => {
                        (None, Some(LeadExclusion::CommitAfterDeployment))
                    }
                };
                let incidents: Vec<ExplainedLink> = self
                    .links_in(index..index + 1)
                    .iter()
                    .map(|link| ExplainedLink {
                        id: outage_id(link.outage),
                        link: link.how,
                    })
                    .collect();
                Some(Explained {
                    id: id(index),
                    finished_at: at(index),
                    outcome: entry.outcome,
                    counts_as_failure: entry.outcome == Outcome::Failed || !incidents.is_empty(),
                    incidents,
                    lead_time_seconds,
                    lead_time_excluded,
                    rework: self.rework_reasons().get(index).copied().flatten(),
                })
            })
            .collect();
        let failures = self
            .runs_in(window)
            .iter()
            .rev()
            .map(|run| ExplainedFailure {
                first_failure: id(run.first),
                started_at: at(run.first),
                recovered_by: run.recovered_by.map(id),
                recovery_seconds: run.recovered_after.map(seconds),
            })
            .collect();
        // Incidents opened in the window, and those linked to its deployments.
        let opened_in = self.outages_in(window);
        let mut shown: Vec<usize> = opened_in.clone().collect();
        shown.extend(self.links_in(range).iter().map(|l| l.outage));
        shown.sort_unstable();
        shown.dedup();
        let incidents = shown
            .into_iter()
            .rev()
            .filter_map(|index| {
                let outage = self.outages.get(index)?;
                Some(ExplainedIncident {
                    id: outage.record.id.clone(),
                    title: outage.record.title.clone(),
                    opened_at: outage.record.opened_at,
                    resolved_at: outage.record.resolved_at,
                    in_recovery_time: opened_in.contains(&index),
                    recovery_seconds: outage.resolved_after.map(seconds),
                    deployments: self
                        .links
                        .iter()
                        .filter(|l| l.outage == index)
                        .map(|l| ExplainedLink {
                            id: id(l.entry),
                            link: l.how,
                        })
                        .collect(),
                })
            })
            .collect();
        Explanation {
            deployments,
            failures,
            incidents,
        }
    }
}
