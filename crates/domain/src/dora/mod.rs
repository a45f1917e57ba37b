//! The five DORA metrics, as pure functions over plain deployment and incident records.
//!
//! A [`History`] is built from finished production deployments (successes and failures; every
//! other status is left out by the caller or ignored here), and optionally the incidents of the
//! same scope ([`History::with_incidents`]), and answers a [`Report`] for any
//! [`Window`], or a series of them. The rules, all decided here and written out in
//! `docs/dora.md`:
//!
//! - **Deployment frequency**: successful deployments finished in the window per day, and the
//!   median over the window's weeks (7-day periods from its start; a window shorter than a week is
//!   one period, a trailing partial week is left out) of the number of its days (24-hour periods
//!   from the window's start, so at most 7) with a successful deployment. Band by deployments per day: elite ≥ 1, high ≥ 1/7, medium ≥ 1/30,
//!   else low.
//! - **Lead time for changes**: for each successful deployment in the window, its finish minus the
//!   earliest known time of its commit (commit timestamp when sent, else the first pipeline event
//!   seen for the commit other than the deployment's own). Only the deployed commit counts, so a
//!   first deployment is never charged with history shiplog never saw, and a deployment whose own
//!   events are all that is known of its commit gets no made-up lead time of seconds. Excluded
//!   and counted: no commit, no commit time, commit time after the finish (clock skew). Median and p90 (nearest rank). Band by median: elite
//!   < 1 hour, high < 1 day, medium < 1 week, else low.
//! - **Change failure rate**: failed ÷ (successful + failed) deployments finished in the window.
//!   A deployment counts as failed if it failed, or if an incident is linked to it: the
//!   deployment the incident names (directly, or at each place the last deployment of the commit
//!   or reference it names finished by its opening), or, when it names none, the last successful
//!   deployment of its place within the link window (default 24 h) before it opened. Several
//!   incidents linked to one deployment make one failure. Band: elite ≤ 5 %, high ≤ 10 %, medium
//!   ≤ 15 %, else low.
//! - **Failed deployment recovery time**: per application and environment, a run of consecutive
//!   failed deployments is one failure, from its first failed deployment to the next success
//!   there; and each incident, from its opening to its resolution. A failure belongs to the
//!   window its first failed deployment is in, an incident to the window it opened in, wherever
//!   the recovery falls; one not recovered yet is excluded and counted. Median over both. Band:
//!   elite < 1 hour, high < 1 day, medium < 1 week, else low.
//! - **Deployment rework rate**: rework ÷ (successful + failed) deployments finished in the
//!   window. A deployment is rework when it says so of itself ([`rework_signal`]: its sender
//!   marked it, its branch or ref is a hotfix, its commit message a revert), or an incident
//!   covering its place, or a failure of its place other than its own, was open when it started
//!   (its finish when its start is unknown). Counted by first reason. No band.
//!
//! Records (deployments and incidents) are deduplicated by id, so duplicate deliveries never
//! count twice, and every result is independent of the order records are given in.

mod explain;
mod records;
mod report;

use std::sync::OnceLock;

use self::report::{banded, count, duration_band, frequency, median, nearest_rank, ratio, seconds};
use crate::timestamp::Timestamp;

pub use records::{
    Blame, Carrier, DEFAULT_HOTFIX_PATTERNS, DEFAULT_LINK_HOURS, DeploymentRecord, IncidentLink,
    IncidentRecord, Outcome, ReworkReason, Window, rework_signal,
};
pub use report::{
    Band, Change, Comparison, FailureRate, Frequency, Interval, LONG_OPEN_INCIDENT_DAYS, LeadTime,
    LeadTimeExclusions, LongOpenIncident, MIN_BAND_SAMPLES, Recovery, RecoveryExclusions, Report,
    Rework, ReworkReasons, open_too_long,
};

pub use explain::{
    Explained, ExplainedFailure, ExplainedIncident, ExplainedLink, Explanation, LeadExclusion,
};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
const MICROS_PER_WEEK: i64 = 7 * MICROS_PER_DAY;

/// One deployment, deduplicated and in time order.
#[derive(Debug, Clone)]
struct Entry {
    at: i64,
    outcome: Outcome,
    lead: Lead,
    /// Its place (application, environment), by number.
    place: u32,
    /// When it started (its finish when unknown).
    started: i64,
    /// What it says of itself as rework.
    signal: Option<ReworkReason>,
}

#[derive(Debug, Clone, Copy)]
enum Lead {
    Micros(i64),
    NoCommit,
    NoCommitTime,
    CommitAfterDeployment,
}

/// One failure: a run of failed deployments at one place, and the success that ended it, if any.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: i64,
    recovered_after: Option<i64>,
    /// The entry of its first failure.
    first: usize,
    /// The entry of the success that ended it.
    recovered_by: Option<usize>,
}

/// When a failure of one place was open, `[start, end)`, the entry of its first failed
/// deployment, and the entry of the success that ended it (which counts as started inside it
/// even when, without a start of its own, its finish stands for its start at `end`).
type FailureSpan = (i64, i64, usize, Option<usize>);

/// When an incident was open, `[opened, end)`.
type Span = (i64, i64);

/// Per place number: its failures' spans and its incidents' spans, each in order of start.
type OpenIntervals = (Vec<Vec<FailureSpan>>, Vec<Vec<Span>>);

/// One incident, deduplicated.
#[derive(Debug, Clone)]
struct Outage {
    opened: i64,
    resolved_after: Option<i64>,
    record: IncidentRecord,
}

/// An incident linked to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Link {
    entry: usize,
    outage: usize,
    how: IncidentLink,
}

/// Deployments (and incidents) prepared for answering reports over any window.
///
/// ```
/// use std::sync::Arc;
/// use shiplog_domain::dora::{DeploymentRecord, History, Outcome, Window};
/// use shiplog_domain::timestamp::Timestamp;
///
/// let at = |t: &str| Timestamp::parse(t).unwrap();
/// let deployed = |id: &str, outcome, finished: &str| DeploymentRecord {
///     id: id.to_owned(),
///     application: Arc::from("api"),
///     environment: Arc::from("production"),
///     outcome,
///     finished_at: at(finished),
///     has_commit: true,
///     commit_time: Some(at("2025-03-03T08:00:00Z")),
///     started_at: None,
///     rework: None,
/// };
/// let history = History::new([
///     deployed("a", Outcome::Succeeded, "2025-03-03T10:00:00Z"),
///     deployed("b", Outcome::Failed, "2025-03-04T10:00:00Z"),
///     deployed("c", Outcome::Succeeded, "2025-03-04T11:00:00Z"),
///     deployed("c", Outcome::Succeeded, "2025-03-04T11:00:00Z"), // the same one again
/// ]);
/// let week = Window::new(at("2025-03-03T00:00:00Z"), at("2025-03-10T00:00:00Z")).unwrap();
/// let report = history.report(week);
/// assert_eq!(report.deployment_frequency.samples, 2);
/// assert_eq!(report.change_failure_rate.value, Some(1.0 / 3.0));
/// assert_eq!(report.recovery_time.median_seconds, Some(3600.0));
/// assert_eq!(report.rework_rate.rework, 1); // the success that ended the failure
/// ```
#[derive(Debug, Clone)]
pub struct History {
    entries: Vec<Entry>,
    /// The id of each entry, by index (moved from the records, not copied).
    ids: Vec<String>,
    /// Each place (application, environment), by number.
    places: Vec<(String, String)>,
    runs: Vec<Run>,
    /// Incidents in opening order.
    outages: Vec<Outage>,
    /// Links from entries to incidents, by entry.
    links: Vec<Link>,
    /// Successful entries with at least one incident linked, in order.
    failed_by_incident: Vec<usize>,
    /// Why each entry is rework, if it is; worked out on first use (it depends on the
    /// incidents, so adding them resets it).
    rework: OnceLock<Vec<Option<ReworkReason>>>,
}

impl History {
    /// Prepares records: deduplicates them by id (of several records with one id, the greatest
    /// by finish time, outcome, then content is kept, so the choice does not depend on order),
    /// sorts them, and finds each place's incidents.
    pub fn new(records: impl IntoIterator<Item = DeploymentRecord>) -> Self {
        let mut records: Vec<DeploymentRecord> = records.into_iter().collect();
        records.sort_unstable_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));

        // Deduplicate by id: of several records with one id, keep the greatest by `rank`.
        let mut kept: FastMap<&str, usize> =
            FastMap::with_capacity_and_hasher(records.len(), rustc_hash::FxBuildHasher);
        let mut dropped = vec![false; records.len()];
        for (index, record) in records.iter().enumerate() {
            if let Some(&other) = kept.get(record.id.as_str()) {
                let loser = match records.get(other) {
                    Some(previous) if rank(previous) >= rank(record) => index,
                    _ => {
                        kept.insert(record.id.as_str(), index);
                        other
                    }
                };
                if let Some(flag) = dropped.get_mut(loser) {
                    *flag = true;
                }
            } else {
                kept.insert(record.id.as_str(), index);
            }
        }
        drop(kept);

        // One pass in time order: each place's open failure, if any. Places (application,
        // environment) are numbered in order of appearance.
        let mut numbers: FastMap<(&str, &str), u32> = FastMap::default();
        let mut open: FastMap<u32, (i64, usize)> = FastMap::default();
        let mut runs = Vec::new();
        let mut entries = Vec::with_capacity(records.len());
        for (record, _) in records
            .iter()
            .zip(&dropped)
            .filter(|(_, dropped)| !**dropped)
        {
            let at = record.finished_at.unix_micros();
            let next = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
            let place = *numbers
                .entry((&*record.application, &*record.environment))
                .or_insert(next);
            let index = entries.len();
            match record.outcome {
                Outcome::Failed => {
                    open.entry(place).or_insert((at, index));
                }
                Outcome::Succeeded => {
                    if let Some((start, first)) = open.remove(&place) {
                        runs.push(Run {
                            start,
                            recovered_after: Some(at - start),
                            first,
                            recovered_by: Some(index),
                        });
                    }
                }
            }
            let lead = match (record.has_commit, record.commit_time) {
                (false, _) => Lead::NoCommit,
                (true, None) => Lead::NoCommitTime,
                (true, Some(commit)) if commit.unix_micros() > at => Lead::CommitAfterDeployment,
                (true, Some(commit)) => Lead::Micros(at - commit.unix_micros()),
            };
            entries.push(Entry {
                at,
                outcome: record.outcome,
                lead,
                place,
                started: record.started_at.map_or(at, Timestamp::unix_micros).min(at),
                signal: record.rework,
            });
        }
        let mut places = vec![(String::new(), String::new()); numbers.len()];
        for ((application, environment), number) in numbers {
            if let Some(slot) = usize::try_from(number).ok().and_then(|n| places.get_mut(n)) {
                *slot = (application.to_owned(), environment.to_owned());
            }
        }
        runs.extend(open.into_values().map(|(start, first)| Run {
            start,
            recovered_after: None,
            first,
            recovered_by: None,
        }));
        runs.sort_unstable_by_key(|i| (i.start, i.recovered_after, i.first));
        let ids = records
            .into_iter()
            .zip(dropped)
            .filter(|(_, dropped)| !dropped)
            .map(|(record, _)| record.id)
            .collect();
        Self {
            entries,
            ids,
            places,
            runs,
            outages: Vec::new(),
            links: Vec::new(),
            failed_by_incident: Vec::new(),
            rework: OnceLock::new(),
        }
    }

    /// Adds the incidents of the same scope, and links each to the deployments it names (or, when
    /// it names none, to the last successful deployment of its place within `link_hours` before
    /// it opened). Incidents are deduplicated by id like deployments; the places (application,
    /// environment) must use the deployments' identifiers.
    pub fn with_incidents(
        mut self,
        incidents: impl IntoIterator<Item = IncidentRecord>,
        link_hours: u32,
    ) -> Self {
        let mut incidents: Vec<IncidentRecord> = incidents.into_iter().collect();
        // Of several records with one id keep the greatest, so the choice does not depend on
        // order; then put them in opening order.
        incidents.sort_unstable_by(|a, b| (&a.id, b).cmp(&(&b.id, a)));
        incidents.dedup_by(|later, kept| later.id == kept.id);
        incidents.sort_unstable_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));

        let window = i64::from(link_hours) * MICROS_PER_HOUR;
        let mut by_id: Option<FastMap<&str, usize>> = None;
        let mut links = Vec::new();
        for (outage, incident) in incidents.iter().enumerate() {
            let opened = incident.opened_at.unix_micros();
            match &incident.blame {
                Blame::Unnamed => {
                    // The newest success at or before the opening, not older than the window.
                    let end = self.entries.partition_point(|e| e.at <= opened);
                    let found = (0..end)
                        .rev()
                        .take_while(|&i| {
                            self.entries.get(i).is_some_and(|e| e.at >= opened - window)
                        })
                        .find(|&i| {
                            self.entries.get(i).is_some_and(|e| {
                                e.outcome == Outcome::Succeeded && self.place_covered(e, incident)
                            })
                        });
                    if let Some(entry) = found {
                        links.push(Link {
                            entry,
                            outage,
                            how: IncidentLink::LastSuccess,
                        });
                    }
                }
                Blame::Deployment(id) => {
                    let by_id = by_id.get_or_insert_with(|| self.index_by_id());
                    if let Some(&entry) = by_id.get(id.as_str()) {
                        links.push(Link {
                            entry,
                            outage,
                            how: IncidentLink::Named,
                        });
                    }
                }
                Blame::Carriers(carriers) => {
                    // At each place, the last carrier finished by the opening.
                    let mut last: FastMap<(&str, &str), &Carrier> = FastMap::default();
                    for carrier in carriers.iter().filter(|c| {
                        c.finished_at <= incident.opened_at
                            && incident.covers(&c.application, &c.environment)
                    }) {
                        let place = (carrier.application.as_str(), carrier.environment.as_str());
                        let slot = last.entry(place).or_insert(carrier);
                        if (carrier.finished_at, &carrier.id) > (slot.finished_at, &slot.id) {
                            *slot = carrier;
                        }
                    }
                    let by_id = by_id.get_or_insert_with(|| self.index_by_id());
                    for carrier in last.into_values() {
                        if let Some(&entry) = by_id.get(carrier.id.as_str()) {
                            links.push(Link {
                                entry,
                                outage,
                                how: IncidentLink::Named,
                            });
                        }
                    }
                }
            }
        }
        drop(by_id);
        links.sort_unstable();
        links.dedup_by_key(|l| (l.entry, l.outage));
        self.failed_by_incident = links
            .iter()
            .map(|l| l.entry)
            .filter(|&e| {
                self.entries
                    .get(e)
                    .is_some_and(|e| e.outcome == Outcome::Succeeded)
            })
            .collect();
        self.failed_by_incident.dedup();
        self.links = links;
        self.outages = incidents
            .into_iter()
            .map(|record| {
                let opened = record.opened_at.unix_micros();
                Outage {
                    opened,
                    resolved_after: record
                        .resolved_at
                        .map(|r| (r.unix_micros() - opened).max(0)),
                    record,
                }
            })
            .collect();
        self.rework = OnceLock::new();
        self
    }

    /// Whether an incident covers an entry's place.
    fn place_covered(&self, entry: &Entry, incident: &IncidentRecord) -> bool {
        usize::try_from(entry.place)
            .ok()
            .and_then(|p| self.places.get(p))
            .is_some_and(|(application, environment)| incident.covers(application, environment))
    }

    /// Each entry's index by id.
    fn index_by_id(&self) -> FastMap<&str, usize> {
        self.ids
            .iter()
            .enumerate()
            .map(|(index, id)| (id.as_str(), index))
            .collect()
    }

    /// The links of the entries in `range`.
    fn links_in(&self, range: std::ops::Range<usize>) -> &[Link] {
        let first = self.links.partition_point(|l| l.entry < range.start);
        let last = self.links.partition_point(|l| l.entry < range.end);
        self.links.get(first..last).unwrap_or_default()
    }

    /// The incidents opened in the window: their index range.
    fn outages_in(&self, window: Window) -> std::ops::Range<usize> {
        let from = window.from.unix_micros();
        let to = window.to.unix_micros();
        self.outages.partition_point(|o| o.opened < from)
            ..self.outages.partition_point(|o| o.opened < to)
    }

    /// How many distinct deployments it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries finished in the window: their index range.
    fn in_window(&self, window: Window) -> std::ops::Range<usize> {
        let from = window.from.unix_micros();
        let to = window.to.unix_micros();
        self.entries.partition_point(|e| e.at < from)..self.entries.partition_point(|e| e.at < to)
    }

    /// The failures whose first failed deployment is in the window.
    fn runs_in(&self, window: Window) -> &[Run] {
        let from = window.from.unix_micros();
        let to = window.to.unix_micros();
        let first = self.runs.partition_point(|i| i.start < from);
        let last = self.runs.partition_point(|i| i.start < to);
        self.runs.get(first..last).unwrap_or_default()
    }

    /// Per place number, the intervals `[start, end)` in which its failures (with their first
    /// entry) and the incidents covering it were open, each list in order of start.
    fn open_intervals(&self) -> OpenIntervals {
        let mut failures = vec![Vec::new(); self.places.len()];
        for run in &self.runs {
            let place = self
                .entries
                .get(run.first)
                .and_then(|first| usize::try_from(first.place).ok());
            if let Some(list) = place.and_then(|p| failures.get_mut(p)) {
                let end = run
                    .recovered_after
                    .map_or(i64::MAX, |after| run.start + after);
                list.push((run.start, end, run.first, run.recovered_by));
            }
        }
        let mut incidents = vec![Vec::new(); self.places.len()];
        for outage in &self.outages {
            let end = outage
                .resolved_after
                .map_or(i64::MAX, |after| outage.opened + after);
            for (number, (application, environment)) in self.places.iter().enumerate() {
                if outage.record.covers(application, environment)
                    && let Some(list) = incidents.get_mut(number)
                {
                    list.push((outage.opened, end));
                }
            }
        }
        (failures, incidents)
    }

    /// Why the entry at `index` is rework, if it is: what it says of itself, else an incident
    /// of its place open when it started, else a failure of its place open then (one that began
    /// before it, with no success yet, other than a failure of its own).
    fn rework_reason(
        &self,
        index: usize,
        (failures, incidents): &OpenIntervals,
    ) -> Option<ReworkReason> {
        let entry = self.entries.get(index)?;
        if entry.signal.is_some() {
            return entry.signal;
        }
        let started = entry.started;
        let place = usize::try_from(entry.place).ok()?;
        let open_incident = incidents.get(place).is_some_and(|list| {
            let opened_before = list.partition_point(|&(opened, _)| opened <= started);
            list.get(..opened_before)
                .unwrap_or_default()
                .iter()
                .any(|&(_, end)| started < end)
        });
        if open_incident {
            return Some(ReworkReason::OpenIncident);
        }
        // A place's failures follow one another: only the last one begun by then can be open.
        let open_failure = failures.get(place).is_some_and(|list| {
            let begun = list.partition_point(|&(start, _, _, _)| start <= started);
            begun
                .checked_sub(1)
                .and_then(|last| list.get(last))
                .is_some_and(|&(_, end, first, recovered_by)| {
                    first != index && (started < end || recovered_by == Some(index))
                })
        });
        open_failure.then_some(ReworkReason::OpenFailure)
    }

    /// Deployment rework rate: the window's successful and failed deployments that were rework
    /// ([`ReworkReason`]), over all of them.
    pub fn rework(&self, window: Window) -> Rework {
        let range = self.in_window(window);
        let samples = count(range.len());
        let mut reasons = ReworkReasons::default();
        for reason in self.rework_reasons().get(range).unwrap_or_default() {
            match reason {
                Some(ReworkReason::Marked) => reasons.marked += 1,
                Some(ReworkReason::HotfixRef) => reasons.hotfix_ref += 1,
                Some(ReworkReason::Revert) => reasons.revert += 1,
                Some(ReworkReason::OpenIncident) => reasons.open_incident += 1,
                Some(ReworkReason::OpenFailure) => reasons.open_failure += 1,
                None => {}
            }
        }
        let rework = reasons.marked
            + reasons.hotfix_ref
            + reasons.revert
            + reasons.open_incident
            + reasons.open_failure;
        Rework {
            value: (samples > 0).then(|| ratio(rework, samples)),
            rework,
            samples,
            reasons,
            band: None,
        }
    }

    /// Why each entry is rework, if it is, worked out once for every window.
    fn rework_reasons(&self) -> &[Option<ReworkReason>] {
        self.rework.get_or_init(|| {
            let open = self.open_intervals();
            (0..self.entries.len())
                .map(|index| self.rework_reason(index, &open))
                .collect()
        })
    }

    /// The five metrics for one window.
    pub fn report(&self, window: Window) -> Report {
        let range = self.in_window(window);
        let in_window = self.entries.get(range.clone()).unwrap_or_default();

        let mut succeeded = 0u64;
        let mut failed = 0u64;
        let mut leads = Vec::new();
        let mut exclusions = LeadTimeExclusions::default();
        for entry in in_window {
            match entry.outcome {
                Outcome::Failed => failed += 1,
                Outcome::Succeeded => {
                    succeeded += 1;
                    match entry.lead {
                        Lead::Micros(micros) => leads.push(micros),
                        Lead::NoCommit => exclusions.no_commit += 1,
                        Lead::NoCommitTime => exclusions.no_commit_time += 1,
                        Lead::CommitAfterDeployment => exclusions.commit_after_deployment += 1,
                    }
                }
            }
        }

        let frequency = frequency(in_window, window, succeeded);

        leads.sort_unstable();
        let lead_median = median(&leads);
        let lead_time = LeadTime {
            median_seconds: lead_median.map(seconds),
            p90_seconds: nearest_rank(&leads, 90).map(seconds),
            samples: count(leads.len()),
            excluded: exclusions.no_commit
                + exclusions.no_commit_time
                + exclusions.commit_after_deployment,
            exclusions,
            band: banded(count(leads.len()), lead_median.map(duration_band)),
        };

        // Successes with an incident linked count as failed.
        let failed_by_incident = count(
            self.failed_by_incident.partition_point(|&e| e < range.end)
                - self
                    .failed_by_incident
                    .partition_point(|&e| e < range.start),
        );
        let mut linked: Vec<usize> = self.links_in(range).iter().map(|l| l.outage).collect();
        linked.sort_unstable();
        linked.dedup();
        let samples = succeeded + failed;
        let all_failed = failed + failed_by_incident;
        let rate = (samples > 0).then(|| ratio(all_failed, samples));
        let change_failure_rate = FailureRate {
            value: rate,
            failed: all_failed,
            failed_deployments: failed,
            failed_by_incident,
            incidents: count(linked.len()),
            succeeded: succeeded - failed_by_incident,
            samples,
            excluded: 0,
            band: banded(
                samples,
                rate.map(|r| {
                    if r <= 0.05 {
                        Band::Elite
                    } else if r <= 0.10 {
                        Band::High
                    } else if r <= 0.15 {
                        Band::Medium
                    } else {
                        Band::Low
                    }
                }),
            ),
        };

        let mut recoveries = Vec::new();
        let mut recovery_exclusions = RecoveryExclusions::default();
        for run in self.runs_in(window) {
            match run.recovered_after {
                Some(micros) => recoveries.push(micros),
                None => recovery_exclusions.unrecovered_failures += 1,
            }
        }
        let from_deployments = count(recoveries.len());
        for outage in self
            .outages
            .get(self.outages_in(window))
            .unwrap_or_default()
        {
            match outage.resolved_after {
                Some(micros) => recoveries.push(micros),
                None => recovery_exclusions.unresolved_incidents += 1,
            }
        }
        let from_incidents = count(recoveries.len()) - from_deployments;
        recoveries.sort_unstable();
        let recovery_median = median(&recoveries);
        let recovery_time = Recovery {
            median_seconds: recovery_median.map(seconds),
            samples: count(recoveries.len()),
            from_deployments,
            from_incidents,
            excluded: recovery_exclusions.unrecovered_failures
                + recovery_exclusions.unresolved_incidents,
            exclusions: recovery_exclusions,
            band: banded(count(recoveries.len()), recovery_median.map(duration_band)),
        };

        Report {
            window,
            deployment_frequency: frequency,
            lead_time,
            change_failure_rate,
            recovery_time,
            rework_rate: self.rework(window),
        }
    }

    /// One report per day or week of the window, from its start; the last bucket ends at the
    /// window's end.
    pub fn series(&self, window: Window, interval: Interval) -> Vec<Report> {
        let step = match interval {
            Interval::Day => MICROS_PER_DAY,
            Interval::Week => MICROS_PER_WEEK,
        };
        let mut reports = Vec::new();
        let mut from = window.from.unix_micros();
        let to = window.to.unix_micros();
        while from < to {
            let end = from.saturating_add(step).min(to);
            if let (Ok(a), Ok(b)) = (
                Timestamp::from_unix_micros(from),
                Timestamp::from_unix_micros(end),
            ) && let Some(bucket) = Window::new(a, b)
            {
                reports.push(self.report(bucket));
            }
            from = end;
        }
        reports
    }
}

/// The maps `History::new` builds over every record (ids, places). std's SipHash guards a map
/// against keys chosen to collide; it was about a tenth of a 365-day DORA query's profile, and
/// swapping it took the computation over 115,000 records from 41 to 27 ms (`cargo xtask bench
/// dora`). These keys are the caller's identifiers of its own deployments, applications and
/// environments, and a collision only slows one report, so `rustc-hash`'s cheaper hash is used.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The fields of a record, in the order duplicates are ranked by.
type Rank<'a> = (
    Timestamp,
    Outcome,
    bool,
    Option<Timestamp>,
    &'a str,
    &'a str,
    Option<Timestamp>,
    Option<ReworkReason>,
);

/// Orders duplicates of one id so the kept one does not depend on arrival order.
fn rank(record: &DeploymentRecord) -> Rank<'_> {
    (
        record.finished_at,
        record.outcome,
        record.has_commit,
        record.commit_time,
        &record.application,
        &record.environment,
        record.started_at,
        record.rework,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dora::records::glob;
    use crate::dora::report::median_f64;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn deploy(
        id: &str,
        place: (&str, &str),
        outcome: Outcome,
        finished: &str,
        commit: Option<&str>,
    ) -> DeploymentRecord {
        DeploymentRecord {
            id: id.into(),
            application: place.0.into(),
            environment: place.1.into(),
            outcome,
            finished_at: at(finished),
            has_commit: commit.is_some(),
            commit_time: commit.map(at),
            started_at: None,
            rework: None,
        }
    }

    const API: (&str, &str) = ("api", "prod-eu");
    const WEB: (&str, &str) = ("web", "prod-us");
    use Outcome::{Failed, Succeeded};

    /// Two production environments, two weeks, every edge case once.
    fn fixture() -> Vec<DeploymentRecord> {
        vec![
            // Before the window: starts an incident that web recovers from on 03-03.
            deploy("d0", WEB, Failed, "2025-02-28T23:00:00Z", None),
            deploy(
                "d1",
                API,
                Succeeded,
                "2025-03-01T10:00:00Z",
                Some("2025-03-01T09:30:00Z"),
            ),
            deploy(
                "d2",
                API,
                Failed,
                "2025-03-02T12:00:00Z",
                Some("2025-03-02T11:00:00Z"),
            ),
            deploy(
                "d3",
                API,
                Failed,
                "2025-03-02T13:00:00Z",
                Some("2025-03-02T11:00:00Z"),
            ),
            deploy(
                "d4",
                API,
                Succeeded,
                "2025-03-02T14:00:00Z",
                Some("2025-03-02T12:00:00Z"),
            ),
            // No commit.
            deploy("d5", API, Succeeded, "2025-03-09T10:00:00Z", None),
            // Commit one minute after the deployment finished: clock skew.
            deploy(
                "d6",
                WEB,
                Succeeded,
                "2025-03-03T08:00:00Z",
                Some("2025-03-03T08:01:00Z"),
            ),
            deploy("d7", WEB, Failed, "2025-03-10T09:00:00Z", None),
            deploy(
                "d8",
                WEB,
                Succeeded,
                "2025-03-11T09:30:00Z",
                Some("2025-03-10T09:30:00Z"),
            ),
            // Not recovered yet.
            deploy("d9", WEB, Failed, "2025-03-14T23:00:00Z", None),
            // Fails inside the window, recovers after it.
            deploy("d10", API, Failed, "2025-03-14T22:00:00Z", None),
            deploy("d11", API, Succeeded, "2025-03-15T01:00:00Z", None),
        ]
    }

    fn window() -> Window {
        Window::new(at("2025-03-01T00:00:00Z"), at("2025-03-15T00:00:00Z")).unwrap()
    }

    fn incident(
        id: &str,
        place: (Option<&str>, Option<&str>),
        opened: &str,
        resolved: Option<&str>,
        blame: Blame,
    ) -> IncidentRecord {
        IncidentRecord {
            id: id.into(),
            title: format!("incident {id}"),
            applications: place.0.map(|a| vec![a.into()]),
            environment: place.1.map(Into::into),
            opened_at: at(opened),
            resolved_at: resolved.map(at),
            blame,
        }
    }

    fn carrier(record: &DeploymentRecord) -> Carrier {
        Carrier {
            id: record.id.clone(),
            application: record.application.to_string(),
            environment: record.environment.to_string(),
            finished_at: record.finished_at,
        }
    }

    /// Incidents over the fixture, one per way of linking.
    fn incidents() -> Vec<IncidentRecord> {
        let api = (Some(API.0), Some(API.1));
        let fixture = fixture();
        vec![
            // Names nothing: d1 (api, 2 h before) was the last success there. 1.5 h.
            incident(
                "i1",
                api,
                "2025-03-01T12:00:00Z",
                Some("2025-03-01T13:30:00Z"),
                Blame::Unnamed,
            ),
            // Names d8 and is still open.
            incident(
                "i2",
                (Some(WEB.0), Some(WEB.1)),
                "2025-03-12T00:00:00Z",
                None,
                Blame::Deployment("d8".into()),
            ),
            // Names a commit carried by d1 and d4 (whole project): the last of them, d4. 2 h.
            incident(
                "i3",
                (None, None),
                "2025-03-03T00:00:00Z",
                Some("2025-03-03T02:00:00Z"),
                Blame::Carriers(vec![carrier(&fixture[1]), carrier(&fixture[4])]),
            ),
            // Opens after the window, no success within a day before it: nothing.
            incident(
                "i4",
                (Some(WEB.0), None),
                "2025-03-20T00:00:00Z",
                None,
                Blame::Unnamed,
            ),
            // Names nothing, whole project: the last success anywhere, d5 (api, 03-09 10:00).
            // 30 min.
            incident(
                "i5",
                (None, None),
                "2025-03-09T12:00:00Z",
                Some("2025-03-09T12:30:00Z"),
                Blame::Unnamed,
            ),
            // Names nothing; api's last success (d4, 03-02 14:00) is 58 h before: nothing
            // within 24 h. 4 h.
            incident(
                "i6",
                api,
                "2025-03-05T00:00:00Z",
                Some("2025-03-05T04:00:00Z"),
                Blame::Unnamed,
            ),
            // Names d7, which failed anyway. 1 h.
            incident(
                "i7",
                (Some(WEB.0), Some(WEB.1)),
                "2025-03-10T10:00:00Z",
                Some("2025-03-10T11:00:00Z"),
                Blame::Deployment("d7".into()),
            ),
        ]
    }

    #[test]
    fn incidents_give_the_numbers_worked_out_by_hand() {
        let history = History::new(fixture()).with_incidents(incidents(), DEFAULT_LINK_HOURS);
        let report = history.report(window());
        // Failed deployments: d2 d3 d7 d9 d10 = 5. Successes with an incident: d1 (i1), d8
        // (i2), d4 (i3), d5 (i5) = 4; d7 (i7) failed anyway. Only d6 is clean.
        // 9 / 10 = 0.9 -> low. Linked incidents: i1 i2 i3 i5 i7 = 5.
        let c = &report.change_failure_rate;
        assert_eq!(
            (c.failed, c.failed_deployments, c.failed_by_incident),
            (9, 5, 4)
        );
        assert_eq!((c.succeeded, c.samples, c.incidents), (1, 10, 5));
        assert_eq!(c.value, Some(0.9));
        // Frequency and lead time count deployments as they ended: unchanged.
        assert_eq!(report.deployment_frequency.samples, 5);
        assert_eq!(report.lead_time.samples, 3);
        // Recovery: the failures' [7200, 10800, 88200] (d9's excluded) and the incidents
        // opened in the window: i1 5400, i3 7200, i5 1800, i6 14400, i7 3600 (i2 open,
        // excluded; i4 after the window). Sorted [1800, 3600, 5400, 7200, 7200, 10800, 14400,
        // 88200]: median (7200 + 7200) / 2 = 7200 s -> high.
        let r = &report.recovery_time;
        assert_eq!((r.samples, r.from_deployments, r.from_incidents), (8, 3, 5));
        assert_eq!(r.excluded, 2);
        assert_eq!(
            (
                r.exclusions.unrecovered_failures,
                r.exclusions.unresolved_incidents
            ),
            (1, 1)
        );
        assert_eq!(r.median_seconds, Some(7200.0));
        assert_eq!(r.band, Some(Band::High));

        let explanation = history.explain(window());
        let of = |id: &str| explanation.deployments.iter().find(|d| d.id == id).unwrap();
        let link = |id: &str, how| ExplainedLink {
            id: id.into(),
            link: how,
        };
        assert_eq!(of("d1").incidents, [link("i1", IncidentLink::LastSuccess)]);
        assert_eq!(of("d4").incidents, [link("i3", IncidentLink::Named)]);
        assert_eq!(of("d5").incidents, [link("i5", IncidentLink::LastSuccess)]);
        assert!(of("d6").incidents.is_empty() && !of("d6").counts_as_failure);
        assert!(of("d7").counts_as_failure);
        // Newest first; i4 opened after the window and is linked to nothing.
        let ids: Vec<&str> = explanation
            .incidents
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(ids, ["i2", "i7", "i5", "i6", "i3", "i1"]);
        let i6 = &explanation.incidents[3];
        assert!(i6.deployments.is_empty() && i6.in_recovery_time);
        assert_eq!(i6.recovery_seconds, Some(14_400.0));
    }

    #[test]
    fn rework_reasons_are_written_as_serde_writes_them_and_read_back() {
        for reason in ReworkReason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, reason.as_str());
            assert_eq!(ReworkReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(ReworkReason::parse("hotfix"), None);
        for outcome in [Outcome::Failed, Outcome::Succeeded] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
        }
        for exclusion in [
            LeadExclusion::NoCommit,
            LeadExclusion::NoCommitTime,
            LeadExclusion::CommitAfterDeployment,
        ] {
            assert_eq!(serde_json::to_value(exclusion).unwrap(), exclusion.as_str());
        }
    }

    #[test]
    fn rework_signals_come_from_the_sender_the_ref_and_the_message() {
        let patterns = DEFAULT_HOTFIX_PATTERNS;
        let signal = |marked, branch, git_ref, message| {
            rework_signal(marked, branch, git_ref, message, &patterns)
        };
        assert_eq!(signal(true, None, None, None), Some(ReworkReason::Marked));
        assert_eq!(
            signal(false, Some("hotfix/login"), None, None),
            Some(ReworkReason::HotfixRef)
        );
        assert_eq!(
            signal(false, None, Some("refs/heads/hotfix-2.1.1"), None),
            Some(ReworkReason::HotfixRef)
        );
        assert_eq!(
            signal(false, None, Some("refs/heads/revert-42-login"), None),
            Some(ReworkReason::HotfixRef)
        );
        assert_eq!(
            signal(
                false,
                Some("main"),
                None,
                Some("Revert \"Add login\"\n\nThis reverts")
            ),
            Some(ReworkReason::Revert)
        );
        assert_eq!(
            signal(
                false,
                Some("main"),
                Some("refs/heads/main"),
                Some("Add hotfix/x docs")
            ),
            None
        );
        assert_eq!(signal(false, Some("feature/hotfix"), None, None), None);
        assert!(glob("a*b*c", "a-x-b-y-c") && !glob("a*b*c", "a-x-c") && glob("*", ""));
        assert!(glob("hotfix/*", "hotfix/") && !glob("hotfix/*", "hotfix"));
    }

    /// The fixture with what rework needs: some starts, a revert and a hotfix branch.
    fn rework_fixture() -> Vec<DeploymentRecord> {
        let mut records = fixture();
        let mut set = |id: &str, started: Option<&str>, signal: Option<ReworkReason>| {
            let record = records.iter_mut().find(|r| r.id == id).unwrap();
            record.started_at = started.map(at);
            record.rework = signal;
        };
        set("d1", None, Some(ReworkReason::Revert));
        set("d4", Some("2025-03-02T13:30:00Z"), None);
        set("d5", None, Some(ReworkReason::HotfixRef));
        set("d6", Some("2025-03-03T07:00:00Z"), None);
        set("d8", Some("2025-03-11T09:00:00Z"), None);
        records
    }

    #[test]
    fn rework_gives_the_numbers_worked_out_by_hand() {
        // With finishes standing for starts: d3 started while d2's failure was open (a failed
        // fix); d9 while i2 (web, open since 03-12) was; d4, d6 and d8 are the successes that
        // end the failures of d2, d0 and d7 (their finish, standing for their start, is where
        // those failures close: the success that ends a failure is rework, as documented);
        // d2, d7 and d10 begin their own failures. 5 of 10.
        let history = History::new(fixture()).with_incidents(incidents(), DEFAULT_LINK_HOURS);
        let r = history.rework(window());
        assert_eq!((r.rework, r.samples), (5, 10));
        assert_eq!(r.value, Some(0.5));
        assert_eq!((r.reasons.open_failure, r.reasons.open_incident), (4, 1));
        // With starts: d4 (13:30, d2's failure open until 14:00), d6 (07:00, d0's open since
        // 02-28) and d8 (09:00, d7's open since 03-10) are fixes; d1 is a revert and d5 a
        // hotfix branch. 7 of 10.
        let history =
            History::new(rework_fixture()).with_incidents(incidents(), DEFAULT_LINK_HOURS);
        let r = history.rework(window());
        assert_eq!((r.rework, r.samples), (7, 10));
        assert_eq!(
            r.reasons,
            ReworkReasons {
                marked: 0,
                hotfix_ref: 1,
                revert: 1,
                open_incident: 1,
                open_failure: 4,
            }
        );
        // Without incidents, d9 is not rework (its own failure begins there).
        assert_eq!(History::new(rework_fixture()).rework(window()).rework, 6);
    }

    /// A week of a window that does not start at midnight touches eight UTC days; deploying on
    /// each of them is still at most seven deploy days in that week.
    #[test]
    fn a_week_has_at_most_seven_deploy_days_whatever_the_windows_edges() {
        let records: Vec<DeploymentRecord> = (0..8)
            .map(|n| {
                let at = format!(
                    "2025-03-{:02}T{}:00:00Z",
                    1 + n,
                    if n == 0 { 13 } else { 11 }
                );
                deploy(&format!("d{n}"), API, Succeeded, &at, None)
            })
            .collect();
        let window = Window::new(at("2025-03-01T12:00:00Z"), at("2025-03-08T12:00:00Z")).unwrap();
        let f = History::new(records).report(window).deployment_frequency;
        assert_eq!(f.samples, 8);
        assert_eq!(f.median_deploy_days_per_week, 7.0);
    }

    /// Five deployments without start times (a hotfix branch, a revert, a failure, then its
    /// fix): the fix ends the failure, so it is rework with the other two: 3 of 5.
    #[test]
    fn the_success_that_ends_a_failure_is_rework_without_a_start_time() {
        let mut records = vec![
            deploy("a", API, Succeeded, "2025-03-02T10:00:00Z", None),
            deploy("b", API, Succeeded, "2025-03-02T11:00:00Z", None),
            deploy("c", API, Succeeded, "2025-03-02T12:00:00Z", None),
            deploy("d", API, Failed, "2025-03-02T13:00:00Z", None),
            deploy("e", API, Succeeded, "2025-03-02T14:00:00Z", None),
        ];
        records[1].rework = Some(ReworkReason::HotfixRef);
        records[2].rework = Some(ReworkReason::Revert);
        let r = History::new(records).rework(window());
        assert_eq!((r.rework, r.samples), (3, 5));
        assert_eq!(r.reasons.open_failure, 1);
    }

    #[test]
    fn incidents_open_longer_than_the_limit_are_named_oldest_first() {
        let now = at("2025-03-20T00:00:00Z");
        let long = open_too_long(&incidents(), now, LONG_OPEN_INCIDENT_DAYS);
        // i2 (open since 03-12, 8 days) only: i4 opened 03-20 and the others are resolved.
        assert_eq!(long.len(), 1, "{long:?}");
        assert_eq!(long[0].id, "i2");
        assert_eq!(long[0].open_days, 8.0);
        assert!(open_too_long(&incidents(), now, 8).is_empty());
    }

    #[test]
    fn the_link_window_is_a_setting() {
        // With 72 h, i6 reaches d4 (58 h before it), already failed through i3: one failure.
        let history = History::new(fixture()).with_incidents(incidents(), 72);
        let c = history.report(window()).change_failure_rate;
        assert_eq!((c.failed, c.failed_by_incident, c.incidents), (9, 4, 6));
        // With 1 h, i1 (2 h after d1) and i5 (2 h after d5) reach nothing.
        let history = History::new(fixture()).with_incidents(incidents(), 1);
        let c = history.report(window()).change_failure_rate;
        assert_eq!((c.failed, c.failed_by_incident, c.incidents), (7, 2, 3));
    }

    #[test]
    fn an_incident_after_the_window_still_fails_the_deployment_in_it() {
        // d9's window ends 03-15; an incident opened 03-15 01:00 names nothing and d11 (api,
        // 03-15 01:00) is outside the window: the last success of api before it is d11 itself
        // (at the same instant), so nothing in the window is charged.
        let late = incident(
            "late",
            (Some(API.0), Some(API.1)),
            "2025-03-15T01:00:00Z",
            None,
            Blame::Unnamed,
        );
        let history = History::new(fixture()).with_incidents([late], DEFAULT_LINK_HOURS);
        assert_eq!(
            history
                .report(window())
                .change_failure_rate
                .failed_by_incident,
            0
        );
        // Named explicitly, d8 is charged whenever the incident opens.
        let named = incident(
            "named",
            (None, None),
            "2025-04-01T00:00:00Z",
            None,
            Blame::Deployment("d8".into()),
        );
        let history = History::new(fixture()).with_incidents([named], DEFAULT_LINK_HOURS);
        let report = history.report(window());
        assert_eq!(report.change_failure_rate.failed_by_incident, 1);
        assert_eq!(
            report.recovery_time.from_incidents, 0,
            "opened after the window"
        );
    }

    #[test]
    fn the_fixture_gives_the_numbers_worked_out_by_hand() {
        let report = History::new(fixture()).report(window());
        // In [03-01, 03-15): successes d1 d4 d5 d6 d8 = 5; failures d2 d3 d7 d9 d10 = 5.
        // Frequency: 5 / 14 days = 0.357/day, >= 1/7 -> high.
        // Deploy days: week 1 (03-01..03-07) 03-01, 03-02, 03-03 = 3; week 2 03-09, 03-11 = 2;
        // median of [2, 3] = 2.5.
        let f = &report.deployment_frequency;
        assert_eq!(f.samples, 5);
        assert!((f.per_day - 5.0 / 14.0).abs() < 1e-12, "{}", f.per_day);
        assert_eq!(f.median_deploy_days_per_week, 2.5);
        assert_eq!(f.band, Band::High);
        // Lead time: d1 30 min, d4 2 h, d8 24 h; d5 has no commit, d6's commit is after it.
        // Sorted [1800, 7200, 86400] s: median 7200 (high: under a day), p90 rank ceil(2.7) = 3.
        let l = &report.lead_time;
        assert_eq!(l.samples, 3);
        assert_eq!(l.median_seconds, Some(7200.0));
        assert_eq!(l.p90_seconds, Some(86400.0));
        assert_eq!(l.excluded, 2);
        assert_eq!(l.exclusions.no_commit, 1);
        assert_eq!(l.exclusions.commit_after_deployment, 1);
        // Three measured lead times are fewer than MIN_BAND_SAMPLES: no band.
        assert_eq!(l.band, None);
        // Failure rate: 5 / 10 = 0.5 -> low.
        let c = &report.change_failure_rate;
        assert_eq!((c.failed, c.succeeded, c.samples), (5, 5, 10));
        assert_eq!(c.value, Some(0.5));
        assert_eq!(c.band, Some(Band::Low));
        // Recovery: incidents starting in the window: api d2 -> d4 = 2 h (d3 is the same
        // incident), api d10 -> d11 = 3 h (recovered after the window), web d7 -> d8 = 24.5 h;
        // web d9 is not recovered (excluded); web d0 started before the window (not counted).
        // Sorted [7200, 10800, 88200]: median 10800 s -> high.
        let r = &report.recovery_time;
        assert_eq!(r.samples, 3);
        assert_eq!(r.excluded, 1);
        assert_eq!(r.median_seconds, Some(10800.0));
        // Three recoveries: too few for a band.
        assert_eq!(r.band, None);
    }

    #[test]
    fn the_explanation_names_the_fixture_deployments_worked_out_by_hand() {
        let explanation = History::new(fixture()).explain(window());
        // Newest first: d9 (03-14 23:00), d10 (22:00), d8, d7, d5, d6, d4, d3, d2, d1; d0 and
        // d11 finished outside the window.
        let ids: Vec<&str> = explanation
            .deployments
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["d9", "d10", "d8", "d7", "d5", "d6", "d4", "d3", "d2", "d1"]
        );
        let of = |id: &str| explanation.deployments.iter().find(|d| d.id == id).unwrap();
        assert_eq!(of("d5").lead_time_excluded, Some(LeadExclusion::NoCommit));
        assert_eq!(
            of("d6").lead_time_excluded,
            Some(LeadExclusion::CommitAfterDeployment)
        );
        assert_eq!(of("d8").lead_time_seconds, Some(86_400.0));
        assert_eq!(
            (of("d7").lead_time_seconds, of("d7").lead_time_excluded),
            (None, None)
        );
        // Failures, newest first: web d9 (not recovered), api d10 -> d11 (3 h), web d7 -> d8
        // (24.5 h), api d2 -> d4 (2 h, d3 is the same failure).
        let failures: Vec<(&str, Option<&str>, Option<f64>)> = explanation
            .failures
            .iter()
            .map(|i| {
                (
                    i.first_failure.as_str(),
                    i.recovered_by.as_deref(),
                    i.recovery_seconds,
                )
            })
            .collect();
        assert_eq!(
            failures,
            [
                ("d9", None, None),
                ("d10", Some("d11"), Some(10_800.0)),
                ("d7", Some("d8"), Some(88_200.0)),
                ("d2", Some("d4"), Some(7_200.0)),
            ]
        );
    }

    #[test]
    fn an_empty_window_measures_nothing_and_says_so() {
        let report = History::new(fixture())
            .report(Window::new(at("2024-01-01T00:00:00Z"), at("2024-01-31T00:00:00Z")).unwrap());
        assert_eq!(report.deployment_frequency.samples, 0);
        assert_eq!(report.deployment_frequency.per_day, 0.0);
        assert_eq!(report.deployment_frequency.median_deploy_days_per_week, 0.0);
        assert_eq!(report.deployment_frequency.band, Band::Low);
        assert_eq!(report.lead_time.median_seconds, None);
        assert_eq!(report.lead_time.band, None);
        assert_eq!(report.change_failure_rate.value, None);
        assert_eq!(report.change_failure_rate.band, None);
        assert_eq!(report.recovery_time.median_seconds, None);
        assert!(Window::new(at("2024-01-02T00:00:00Z"), at("2024-01-01T00:00:00Z")).is_none());
    }

    #[test]
    fn a_re_run_recorded_as_one_deployment_counts_once() {
        let mut records = fixture();
        // The same deployment id reported again (a retry of the notification).
        records.push(records[4].clone());
        records.push(records[4].clone());
        assert_eq!(History::new(records.clone()).len(), fixture().len());
        assert_eq!(
            History::new(records).report(window()),
            History::new(fixture()).report(window())
        );
    }

    #[test]
    fn bands_follow_the_documented_thresholds() {
        assert_eq!(duration_band(MICROS_PER_HOUR - 1), Band::Elite);
        assert_eq!(duration_band(MICROS_PER_HOUR), Band::High);
        assert_eq!(duration_band(MICROS_PER_DAY), Band::Medium);
        assert_eq!(duration_band(MICROS_PER_WEEK), Band::Low);
        let rate = |failed: usize, ok: usize| {
            let mut records = Vec::new();
            for n in 0..failed + ok {
                let outcome = if n < failed { Failed } else { Succeeded };
                let mut r = deploy(&n.to_string(), API, outcome, "2025-03-05T00:00:00Z", None);
                r.finished_at = Timestamp::from_unix_micros(
                    r.finished_at.unix_micros() + i64::try_from(n).unwrap(),
                )
                .unwrap();
                records.push(r);
            }
            History::new(records)
                .report(window())
                .change_failure_rate
                .band
        };
        assert_eq!(rate(1, 19), Some(Band::Elite), "5 %");
        assert_eq!(rate(1, 9), Some(Band::High), "10 %");
        assert_eq!(rate(3, 17), Some(Band::Medium), "15 %");
        assert_eq!(rate(4, 16), Some(Band::Low), "20 %");
    }

    #[test]
    fn figures_compare_with_the_previous_period_by_which_way_is_better() {
        use super::report::Change;
        assert_eq!(Change::of(Some(2.0), Some(1.0), true), Change::Better);
        assert_eq!(Change::of(Some(2.0), Some(1.0), false), Change::Worse);
        assert_eq!(Change::of(Some(1.0), Some(1.0), false), Change::Unchanged);
        assert_eq!(Change::of(None, Some(1.0), false), Change::NothingToCompare);
    }

    #[test]
    fn a_band_needs_enough_measurements() {
        // `n` successes, each an hour after its commit, and as many failures, each recovered by
        // the next success of its place half an hour later.
        let report = |n: usize| {
            let mut records = Vec::new();
            for i in 0..n {
                let day = format!("2025-03-{:02}", 2 + i);
                let mut failed = deploy(
                    &format!("f{i}"),
                    API,
                    Failed,
                    &format!("{day}T10:00:00Z"),
                    None,
                );
                failed.has_commit = false;
                records.push(failed);
                records.push(deploy(
                    &format!("s{i}"),
                    API,
                    Succeeded,
                    &format!("{day}T10:30:00Z"),
                    Some(&format!("{day}T10:00:00Z")),
                ));
            }
            History::new(records).report(window())
        };
        let few = report(2);
        assert_eq!(few.lead_time.samples, 2);
        assert_eq!(few.lead_time.median_seconds, Some(1800.0));
        assert_eq!(few.lead_time.band, None, "2 lead times");
        assert_eq!(few.recovery_time.band, None, "2 recoveries");
        assert_eq!(few.change_failure_rate.samples, 4);
        assert_eq!(few.change_failure_rate.band, None, "4 finished deployments");
        let enough = report(usize::try_from(MIN_BAND_SAMPLES).unwrap());
        assert_eq!(enough.lead_time.band, Some(Band::Elite));
        assert_eq!(enough.recovery_time.band, Some(Band::Elite));
        assert_eq!(enough.change_failure_rate.band, Some(Band::Low));
        // Frequency is measured over the window: one success in 14 days (1/14 a day) still
        // has its band.
        assert_eq!(report(1).deployment_frequency.band, Band::Medium);
    }

    #[test]
    fn daily_series_buckets_add_up_to_the_window() {
        let history = History::new(fixture());
        let days = history.series(window(), Interval::Day);
        assert_eq!(days.len(), 14);
        let total: u64 = days.iter().map(|d| d.deployment_frequency.samples).sum();
        assert_eq!(total, 5);
        let failed: u64 = days.iter().map(|d| d.change_failure_rate.failed).sum();
        assert_eq!(failed, 5);
        assert_eq!(days[1].change_failure_rate.failed, 2, "03-02: d2 and d3");
        let weeks = history.series(window(), Interval::Week);
        assert_eq!(weeks.len(), 2);
        assert_eq!(weeks[0].deployment_frequency.samples, 3);
    }

    #[test]
    fn percentiles_and_medians_by_hand() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[1, 3]), Some(2));
        assert_eq!(median(&[1, 2, 10]), Some(2));
        assert_eq!(median_f64(&[2, 3]), 2.5);
        assert_eq!(median_f64(&[]), 0.0);
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 90), Some(90));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&(1..=10).collect::<Vec<_>>(), 90), Some(9));
    }

    proptest! {
        #[test]
        fn results_ignore_insertion_order_and_duplicate_deliveries(
            order in Just(fixture()).prop_shuffle(),
            duplicates in proptest::collection::vec(0usize..12, 0..12),
            incident_order in Just(incidents()).prop_shuffle(),
            incident_repeats in proptest::collection::vec(0usize..7, 0..7),
        ) {
            let repeated: Vec<IncidentRecord> =
                incident_repeats.into_iter().map(|i| incidents()[i].clone()).collect();
            let mut records = order;
            for index in duplicates {
                let copy = records[index].clone();
                records.push(copy);
            }
            let expected = History::new(fixture()).with_incidents(incidents(), DEFAULT_LINK_HOURS);
            let got = History::new(records)
                .with_incidents(incident_order.into_iter().chain(repeated), DEFAULT_LINK_HOURS);
            prop_assert_eq!(got.report(window()), expected.report(window()));
            prop_assert_eq!(
                got.series(window(), Interval::Day),
                expected.series(window(), Interval::Day)
            );
            prop_assert_eq!(got.explain(window()), expected.explain(window()));
            prop_assert_eq!(got.rework(window()), expected.rework(window()));
        }

        /// Rework is the same whatever the order and repeats of deployments and incidents.
        #[test]
        fn rework_ignores_arrival_order_and_repeats(
            order in Just(rework_fixture()).prop_shuffle(),
            duplicates in proptest::collection::vec(0usize..12, 0..12),
            incident_order in Just(incidents()).prop_shuffle(),
            start in 0i64..10,
            days in 1i64..6,
        ) {
            let mut records = order;
            for index in duplicates {
                let copy = records[index].clone();
                records.push(copy);
            }
            let base = window().from.unix_micros();
            let from = Timestamp::from_unix_micros(base + start * MICROS_PER_DAY).unwrap();
            let to = Timestamp::from_unix_micros(base + (start + days) * MICROS_PER_DAY).unwrap();
            let window = Window::new(from, to).unwrap();
            let expected = History::new(rework_fixture())
                .with_incidents(incidents(), DEFAULT_LINK_HOURS)
                .rework(window);
            let got = History::new(records)
                .with_incidents(incident_order, DEFAULT_LINK_HOURS)
                .rework(window);
            prop_assert_eq!(&got, &expected);
            let r = got.reasons;
            prop_assert_eq!(
                r.marked + r.hotfix_ref + r.revert + r.open_incident + r.open_failure,
                got.rework
            );
            prop_assert!(got.rework <= got.samples);
        }

        /// Every figure of a report is traced by its explanation: the same deployments, the
        /// same lead times and exclusions, the same incidents, for any window.
        #[test]
        fn the_explanation_accounts_for_every_figure(
            order in Just(rework_fixture()).prop_shuffle(),
            start in 0i64..6,
            days in 1i64..6,
            link_hours in 1u32..72,
        ) {
            let history = History::new(order).with_incidents(incidents(), link_hours);
            let base = window().from.unix_micros();
            let from = Timestamp::from_unix_micros(base + start * MICROS_PER_DAY).unwrap();
            let to = Timestamp::from_unix_micros(base + (start + days) * MICROS_PER_DAY).unwrap();
            let window = Window::new(from, to).unwrap();
            let report = history.report(window);
            let explanation = history.explain(window);
            let failed = explanation.deployments.iter().filter(|d| d.outcome == Outcome::Failed);
            prop_assert_eq!(count(failed.count()), report.change_failure_rate.failed_deployments);
            prop_assert_eq!(count(explanation.deployments.len()), report.change_failure_rate.samples);
            let mut leads: Vec<f64> = explanation
                .deployments
                .iter()
                .filter_map(|d| d.lead_time_seconds)
                .collect();
            leads.sort_by(f64::total_cmp);
            prop_assert_eq!(count(leads.len()), report.lead_time.samples);
            let excluded = |why| {
                count(
                    explanation
                        .deployments
                        .iter()
                        .filter(|d| d.lead_time_excluded == Some(why))
                        .count(),
                )
            };
            let exclusions = &report.lead_time.exclusions;
            prop_assert_eq!(excluded(LeadExclusion::NoCommit), exclusions.no_commit);
            prop_assert_eq!(excluded(LeadExclusion::NoCommitTime), exclusions.no_commit_time);
            prop_assert_eq!(
                excluded(LeadExclusion::CommitAfterDeployment),
                exclusions.commit_after_deployment
            );
            let recovered = explanation.failures.iter().filter(|i| i.recovered_by.is_some());
            prop_assert_eq!(count(recovered.count()), report.recovery_time.from_deployments);
            let resolved = explanation
                .incidents
                .iter()
                .filter(|i| i.in_recovery_time && i.recovery_seconds.is_some());
            prop_assert_eq!(count(resolved.count()), report.recovery_time.from_incidents);
            let counted = explanation.failures.len()
                + explanation.incidents.iter().filter(|i| i.in_recovery_time).count();
            prop_assert_eq!(
                count(counted) - report.recovery_time.samples,
                report.recovery_time.excluded
            );
            let failing = explanation.deployments.iter().filter(|d| d.counts_as_failure);
            prop_assert_eq!(count(failing.count()), report.change_failure_rate.failed);
            // Each rework deployment with its reason, as counted.
            let mut reasons = ReworkReasons::default();
            for reason in explanation.deployments.iter().filter_map(|d| d.rework) {
                match reason {
                    ReworkReason::Marked => reasons.marked += 1,
                    ReworkReason::HotfixRef => reasons.hotfix_ref += 1,
                    ReworkReason::Revert => reasons.revert += 1,
                    ReworkReason::OpenIncident => reasons.open_incident += 1,
                    ReworkReason::OpenFailure => reasons.open_failure += 1,
                }
            }
            prop_assert_eq!(&reasons, &report.rework_rate.reasons);
            // Every failure starts at one of the window's deployments.
            for failure in &explanation.failures {
                prop_assert!(explanation.deployments.iter().any(|d| d.id == failure.first_failure));
            }
            // Newest first.
            prop_assert!(explanation.deployments.windows(2).all(|w| w[0].finished_at >= w[1].finished_at));
        }
    }
}
