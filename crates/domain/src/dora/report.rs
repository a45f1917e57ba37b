//! What the metrics answer: a [`Report`] of the five metrics for a window, their bands, and
//! the statistics behind them.

use serde::Serialize;

use super::{
    Entry, IncidentRecord, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND, MICROS_PER_WEEK,
    Outcome, Window,
};
use crate::timestamp::Timestamp;

/// Deployment rework rate in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReworkRate))]
pub struct Rework {
    /// rework ÷ (successful + failed) deployments, from 0 to 1; `None` without deployments.
    pub value: Option<f64>,
    /// Deployments that were rework.
    pub rework: u64,
    /// Successful and failed deployments.
    pub samples: u64,
    /// How many for each reason (each deployment counted once, for its first reason in
    /// [`ReworkReason`](super::ReworkReason)'s order).
    pub reasons: ReworkReasons,
    /// Always `None`: no DORA report publishes performance bands for rework rate, and shiplog
    /// does not invent one.
    pub band: Option<Band>,
}

/// Rework counted by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReworkReasons {
    /// Marked by the sender.
    pub marked: u64,
    /// A hotfix branch or ref.
    pub hotfix_ref: u64,
    /// A revert.
    pub revert: u64,
    /// Started while an incident was open.
    pub open_incident: u64,
    /// Started while a failure was open.
    pub open_failure: u64,
}

/// How long an incident may stay open before a report flags it ([`open_too_long`]).
pub const LONG_OPEN_INCIDENT_DAYS: u32 = 7;

/// An incident still open after [`LONG_OPEN_INCIDENT_DAYS`]: it makes every later deployment of
/// its place rework and keeps its recovery unmeasured, so a report names it, for a person to
/// close it if it is over.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LongOpenIncident {
    /// Its id.
    pub id: String,
    /// What broke.
    pub title: String,
    /// When it opened.
    pub opened_at: Timestamp,
    /// How many days it has been open at `now`.
    pub open_days: f64,
}

/// The incidents still open at `now` that opened more than `days` days before it, oldest first.
pub fn open_too_long(
    incidents: &[IncidentRecord],
    now: Timestamp,
    days: u32,
) -> Vec<LongOpenIncident> {
    let limit = i64::from(days).saturating_mul(MICROS_PER_DAY);
    let mut long: Vec<LongOpenIncident> = incidents
        .iter()
        .filter(|i| i.resolved_at.is_none())
        .filter(|i| now.unix_micros().saturating_sub(i.opened_at.unix_micros()) > limit)
        .map(|i| LongOpenIncident {
            id: i.id.clone(),
            title: i.title.clone(),
            opened_at: i.opened_at,
            open_days: (now.unix_micros() - i.opened_at.unix_micros()) as f64
                / MICROS_PER_DAY as f64,
        })
        .collect();
    long.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)));
    long.dedup_by(|a, b| a.id == b.id);
    long
}

/// The DORA performance band of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Band {
    /// Elite performers.
    Elite,
    /// High performers.
    High,
    /// Medium performers.
    Medium,
    /// Low performers.
    Low,
}

/// The fewest measurements a median or a rate is given a band for: lead time (measured
/// deployments), change failure rate (finished deployments) and recovery time (recoveries).
/// A band of one or two values says little of how a team performs (one quick deployment would
/// be "elite"). Deployment frequency is measured over the whole window, so it always has one.
pub const MIN_BAND_SAMPLES: u64 = 5;

/// `band`, when the figure rests on at least [`MIN_BAND_SAMPLES`] measurements.
pub(super) fn banded(samples: u64, band: Option<Band>) -> Option<Band> {
    band.filter(|_| samples >= MIN_BAND_SAMPLES)
}

impl Band {
    /// The band as the API writes it (`elite`, `high`, `medium`, `low`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Elite => "elite",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// Deployment frequency in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DeploymentFrequency))]
pub struct Frequency {
    /// Successful deployments per day.
    pub per_day: f64,
    /// The median number of distinct deploy days per week.
    pub median_deploy_days_per_week: f64,
    /// Successful deployments counted.
    pub samples: u64,
    /// Always 0: every successful deployment counts.
    pub excluded: u64,
    /// The band of `per_day`.
    pub band: Band,
}

/// Why a successful deployment gave no lead time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadTimeExclusions {
    /// It names no commit.
    pub no_commit: u64,
    /// Nothing but the deployment itself tells when its commit was made: no commit timestamp,
    /// and no pipeline event of that commit other than the deployment's own.
    pub no_commit_time: u64,
    /// Its commit's time is after its finish (clock skew).
    pub commit_after_deployment: u64,
}

/// Lead time for changes in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadTime {
    /// The median, in seconds; `None` without samples.
    pub median_seconds: Option<f64>,
    /// The 90th percentile (nearest rank), in seconds; `None` without samples.
    pub p90_seconds: Option<f64>,
    /// Deployments measured.
    pub samples: u64,
    /// Successful deployments that could not be measured.
    pub excluded: u64,
    /// Why they could not.
    pub exclusions: LeadTimeExclusions,
    /// The band of the median; `None` with fewer than [`MIN_BAND_SAMPLES`] samples.
    pub band: Option<Band>,
}

/// Change failure rate in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChangeFailureRate))]
pub struct FailureRate {
    /// failed ÷ (successful + failed), from 0 to 1; `None` without deployments.
    pub value: Option<f64>,
    /// Deployments counted as failed: `failed_deployments + failed_by_incident`.
    pub failed: u64,
    /// Of those, deployments that failed.
    pub failed_deployments: u64,
    /// Of those, deployments that succeeded but have an incident linked to them.
    pub failed_by_incident: u64,
    /// How many incidents are linked to the window's deployments.
    pub incidents: u64,
    /// Successful deployments with no incident linked.
    pub succeeded: u64,
    /// failed + succeeded.
    pub samples: u64,
    /// Always 0: other statuses are not deployments that finished.
    pub excluded: u64,
    /// The band; `None` with fewer than [`MIN_BAND_SAMPLES`] finished deployments.
    pub band: Option<Band>,
}

/// Failed deployment recovery time in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RecoveryTime))]
pub struct Recovery {
    /// The median, in seconds; `None` without samples.
    pub median_seconds: Option<f64>,
    /// Recoveries measured: `from_deployments + from_incidents`.
    pub samples: u64,
    /// Of those, failures (runs of failed deployments) ended by a success.
    pub from_deployments: u64,
    /// Of those, incidents resolved.
    pub from_incidents: u64,
    /// Not recovered yet: `exclusions.unrecovered_failures + exclusions.unresolved_incidents`.
    pub excluded: u64,
    /// Why they were excluded.
    pub exclusions: RecoveryExclusions,
    /// The band of the median; `None` with fewer than [`MIN_BAND_SAMPLES`] samples.
    pub band: Option<Band>,
}

/// What the recovery time could not measure yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryExclusions {
    /// Failures with no successful deployment after them yet.
    pub unrecovered_failures: u64,
    /// Incidents still open.
    pub unresolved_incidents: u64,
}

/// The five metrics for one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraReport))]
pub struct Report {
    /// The window.
    pub window: Window,
    /// Deployment frequency.
    pub deployment_frequency: Frequency,
    /// Lead time for changes.
    pub lead_time: LeadTime,
    /// Change failure rate.
    pub change_failure_rate: FailureRate,
    /// Failed deployment recovery time.
    pub recovery_time: Recovery,
    /// Deployment rework rate.
    pub rework_rate: Rework,
}

/// How a figure moved from one period to the next, judged by which way is better for its
/// metric: more deployments a day, and shorter or fewer of everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It moved the better way.
    Better,
    /// It moved the worse way.
    Worse,
    /// It did not move.
    Unchanged,
    /// One of the two periods has no figure.
    NothingToCompare,
}

impl Change {
    /// The change in words (`better`, `worse`, `unchanged`, `nothing to compare`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Better => "better",
            Self::Worse => "worse",
            Self::Unchanged => "unchanged",
            Self::NothingToCompare => "nothing to compare",
        }
    }

    pub(super) fn of(now: Option<f64>, before: Option<f64>, higher_is_better: bool) -> Self {
        match (now, before) {
            (Some(now), Some(before)) if (now - before).abs() < 1e-9 => Self::Unchanged,
            (Some(now), Some(before)) if (now > before) == higher_is_better => Self::Better,
            (Some(_), Some(_)) => Self::Worse,
            _ => Self::NothingToCompare,
        }
    }
}

/// Each metric of a report against the same metric of an earlier one ([`Report::against`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Deployments a day: more is better.
    pub deployment_frequency: Change,
    /// The median lead time: shorter is better.
    pub lead_time: Change,
    /// The change failure rate: lower is better.
    pub change_failure_rate: Change,
    /// The median recovery time: shorter is better.
    pub recovery_time: Change,
    /// The rework rate: lower is better.
    pub rework_rate: Change,
}

impl Report {
    /// How each figure moved since `before` (an earlier period's report).
    ///
    /// ```
    /// use shiplog_domain::dora::{Change, History, Window};
    /// use shiplog_domain::timestamp::Timestamp;
    /// let t = |s: &str| Timestamp::parse(s).unwrap();
    /// let empty = History::new([]);
    /// let now = empty.report(Window::new(t("2025-03-08T00:00:00Z"), t("2025-03-15T00:00:00Z")).unwrap());
    /// let before = empty.report(Window::new(t("2025-03-01T00:00:00Z"), t("2025-03-08T00:00:00Z")).unwrap());
    /// let moved = now.against(&before);
    /// assert_eq!(moved.deployment_frequency, Change::Unchanged);
    /// assert_eq!(moved.lead_time, Change::NothingToCompare);
    /// ```
    pub fn against(&self, before: &Self) -> Comparison {
        Comparison {
            deployment_frequency: Change::of(
                Some(self.deployment_frequency.per_day),
                Some(before.deployment_frequency.per_day),
                true,
            ),
            lead_time: Change::of(
                self.lead_time.median_seconds,
                before.lead_time.median_seconds,
                false,
            ),
            change_failure_rate: Change::of(
                self.change_failure_rate.value,
                before.change_failure_rate.value,
                false,
            ),
            recovery_time: Change::of(
                self.recovery_time.median_seconds,
                before.recovery_time.median_seconds,
                false,
            ),
            rework_rate: Change::of(self.rework_rate.value, before.rework_rate.value, false),
        }
    }
}

/// Buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One bucket per day from the window's start.
    Day,
    /// One bucket per 7 days from the window's start.
    Week,
}

pub(super) fn frequency(in_window: &[Entry], window: Window, succeeded: u64) -> Frequency {
    let days = window.days();
    let per_day = if days > 0.0 {
        succeeded as f64 / days
    } else {
        0.0
    };
    let from = window.from.unix_micros();
    // Whole weeks from the window's start; a window under a week is one period.
    let weeks = (window.micros() / MICROS_PER_WEEK).max(1);
    let mut deploy_days: Vec<Vec<i64>> = vec![Vec::new(); usize::try_from(weeks).unwrap_or(1)];
    for entry in in_window.iter().filter(|e| e.outcome == Outcome::Succeeded) {
        let week = (entry.at - from) / MICROS_PER_WEEK;
        if let Some(days) = usize::try_from(week)
            .ok()
            .and_then(|w| deploy_days.get_mut(w))
        {
            // Days as weeks are: 24-hour periods from the window's start (UTC days when it
            // starts at midnight), so a week holds seven of them whatever its edges.
            let day = (entry.at - from).div_euclid(MICROS_PER_DAY);
            if !days.contains(&day) {
                days.push(day);
            }
        }
    }
    let mut per_week: Vec<i64> = deploy_days.iter().map(|d| count_i64(d.len())).collect();
    per_week.sort_unstable();
    let median_days = median_f64(&per_week);
    let band = if per_day >= 1.0 {
        Band::Elite
    } else if per_day >= 1.0 / 7.0 {
        Band::High
    } else if per_day >= 1.0 / 30.0 {
        Band::Medium
    } else {
        Band::Low
    };
    Frequency {
        per_day,
        median_deploy_days_per_week: median_days,
        samples: succeeded,
        excluded: 0,
        band,
    }
}

/// The two middle values of sorted values (the same one twice when their number is odd).
pub(super) fn middle(sorted: &[i64]) -> Option<(i64, i64)> {
    let n = sorted.len();
    let upper = *sorted.get(n / 2)?;
    let lower = if n.is_multiple_of(2) {
        *sorted.get(n / 2 - 1)?
    } else {
        upper
    };
    Some((lower, upper))
}

/// The median of sorted values: the middle one, or the mean of the two middle ones.
pub(super) fn median(sorted: &[i64]) -> Option<i64> {
    middle(sorted).map(|(lower, upper)| lower + (upper - lower) / 2)
}

/// The median as a fraction, 0 for no values.
pub(super) fn median_f64(sorted: &[i64]) -> f64 {
    middle(sorted).map_or(0.0, |(lower, upper)| (lower + upper) as f64 / 2.0)
}

/// The p-th percentile by nearest rank: the smallest value with at least p % at or below it.
pub(super) fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (percent * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub(super) fn duration_band(micros: i64) -> Band {
    if micros < MICROS_PER_HOUR {
        Band::Elite
    } else if micros < MICROS_PER_DAY {
        Band::High
    } else if micros < MICROS_PER_WEEK {
        Band::Medium
    } else {
        Band::Low
    }
}

pub(super) fn seconds(micros: i64) -> f64 {
    micros as f64 / MICROS_PER_SECOND as f64
}

pub(super) fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

pub(super) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(super) fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
