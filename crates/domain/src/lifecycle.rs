//! How a deployment's status settles when its events arrive late, twice, or out of order.
//!
//! Every event about a deployment is an [`Observation`]: a status at a point in time. The
//! deployment's state is the *greatest* observation seen so far under one total order:
//!
//! 1. a terminal status (`success`, `failed`, `cancelled`) beats a non-terminal one, whenever
//!    either happened: a late `deploy.started` never reopens a finished deployment;
//! 2. between two terminal or two non-terminal observations, the later event wins: a re-run
//!    that fails after a success is the deployment's new result;
//! 3. at the same instant, `failed` > `cancelled` > `success` and `running` > `pending` >
//!    `unknown` (pessimistic, and progress over waiting); then the remaining fields decide, so
//!    the order is total.
//!
//! Because "keep the greatest" is commutative and associative, the final state is the same for
//! every arrival order, and applying an observation twice changes nothing. The start time is the
//! earliest start seen, which is order-independent for the same reason.

use serde::{Deserialize, Serialize};

use crate::status::DeploymentStatus;
use crate::timestamp::Timestamp;

/// One event's view of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    /// The normalized status.
    pub status: DeploymentStatus,
    /// The provider's word, as sent.
    pub provider_status: String,
    /// When the provider says the event happened (its finish time, start time, or when shiplog
    /// received it, in that order of preference).
    pub at: Timestamp,
    /// When the deployment started, if the event says.
    pub started_at: Option<Timestamp>,
    /// When the deployment finished, if the event says.
    pub finished_at: Option<Timestamp>,
}

impl Observation {
    /// The start time this observation vouches for: the explicit one, or, for a running
    /// observation, its own time (the deployment had started by then).
    fn start_time(&self) -> Option<Timestamp> {
        self.started_at
            .or_else(|| (self.status == DeploymentStatus::Running).then_some(self.at))
    }

    fn finish_time(&self) -> Option<Timestamp> {
        self.status
            .is_terminal()
            .then(|| self.finished_at.unwrap_or(self.at))
    }
}

/// The settled state of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The current status.
    pub status: DeploymentStatus,
    /// The provider's word for the current status.
    pub provider_status: String,
    /// When the observation that set the current status happened.
    pub status_at: Timestamp,
    /// The earliest start seen.
    pub started_at: Option<Timestamp>,
    /// When it finished, for a terminal status.
    pub finished_at: Option<Timestamp>,
}

/// The result of applying one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state after the observation.
    pub lifecycle: Lifecycle,
    /// The status before, when the observation changed it; `None` when it did not.
    pub status_changed_from: Option<DeploymentStatus>,
}

/// Orders observations; the greatest one is the deployment's state.
type Precedence<'a> = (bool, Timestamp, u8, Option<Timestamp>, &'a str);

const fn tie_rank(status: DeploymentStatus) -> u8 {
    match status {
        DeploymentStatus::Unknown => 0,
        DeploymentStatus::Pending => 1,
        DeploymentStatus::Running => 2,
        DeploymentStatus::Success => 3,
        DeploymentStatus::Cancelled => 4,
        DeploymentStatus::Failed => 5,
    }
}

impl Lifecycle {
    /// The state of a deployment seen once.
    pub fn new(first: &Observation) -> Self {
        Self {
            status: first.status,
            provider_status: first.provider_status.clone(),
            status_at: first.at,
            started_at: first.start_time(),
            finished_at: first.finish_time(),
        }
    }

    fn precedence(&self) -> Precedence<'_> {
        (
            self.status.is_terminal(),
            self.status_at,
            tie_rank(self.status),
            self.finished_at,
            &self.provider_status,
        )
    }

    /// Applies one more observation. Pure: `self` is not changed.
    pub fn apply(&self, observation: &Observation) -> Transition {
        let candidate = Self::new(observation);
        let started_at = match (self.started_at, candidate.started_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut next = if candidate.precedence() > self.precedence() {
            candidate
        } else {
            self.clone()
        };
        next.started_at = started_at;
        let status_changed_from = (next.status != self.status).then_some(self.status);
        Transition {
            lifecycle: next,
            status_changed_from,
        }
    }

    /// Folds observations in the order given; `None` for none.
    pub fn settle<'a>(observations: impl IntoIterator<Item = &'a Observation>) -> Option<Self> {
        observations
            .into_iter()
            .fold(None, |state: Option<Self>, observation| match state {
                None => Some(Self::new(observation)),
                Some(state) => Some(state.apply(observation).lifecycle),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentStatus::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000 + seconds).unwrap()
    }

    fn obs(status: DeploymentStatus, seconds: i64) -> Observation {
        Observation {
            status,
            provider_status: status.as_str().to_owned(),
            at: at(seconds),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn started_then_completed() {
        let state = Lifecycle::new(&obs(Running, 0));
        let next = state.apply(&obs(Success, 60));
        assert_eq!(next.status_changed_from, Some(Running));
        assert_eq!(next.lifecycle.status, Success);
        assert_eq!(next.lifecycle.started_at, Some(at(0)));
        assert_eq!(next.lifecycle.finished_at, Some(at(60)));
    }

    #[test]
    fn a_late_start_never_reopens_a_finished_deployment() {
        let state = Lifecycle::new(&obs(Success, 60));
        let next = state.apply(&obs(Running, 0));
        assert_eq!(next.status_changed_from, None);
        assert_eq!(next.lifecycle.status, Success);
        assert_eq!(
            next.lifecycle.started_at,
            Some(at(0)),
            "the start is still learned"
        );
        assert_eq!(next.lifecycle.finished_at, Some(at(60)));
        let even_later = state.apply(&obs(Running, 600));
        assert_eq!(
            even_later.lifecycle.status, Success,
            "terminal beats later non-terminal"
        );
    }

    #[test]
    fn a_terminal_status_is_replaced_only_by_a_later_one() {
        let state = Lifecycle::new(&obs(Success, 60));
        assert_eq!(state.apply(&obs(Failed, 30)).lifecycle.status, Success);
        let rerun = state.apply(&obs(Failed, 90));
        assert_eq!(rerun.lifecycle.status, Failed);
        assert_eq!(rerun.status_changed_from, Some(Success));
        assert_eq!(rerun.lifecycle.finished_at, Some(at(90)));
    }

    #[test]
    fn the_same_observation_twice_changes_nothing() {
        let first = obs(Running, 0);
        let state = Lifecycle::new(&first);
        let again = state.apply(&first);
        assert_eq!(again.status_changed_from, None);
        assert_eq!(again.lifecycle, state);
    }

    #[test]
    fn ties_are_pessimistic() {
        let state = Lifecycle::new(&obs(Success, 10));
        assert_eq!(state.apply(&obs(Failed, 10)).lifecycle.status, Failed);
        let state = Lifecycle::new(&obs(Pending, 10));
        assert_eq!(state.apply(&obs(Running, 10)).lifecycle.status, Running);
    }

    #[test]
    fn explicit_times_are_kept() {
        let mut o = obs(Success, 100);
        o.started_at = Some(at(5));
        o.finished_at = Some(at(95));
        let state = Lifecycle::new(&o);
        assert_eq!(state.started_at, Some(at(5)));
        assert_eq!(state.finished_at, Some(at(95)));
    }

    #[test]
    fn settle_folds_in_order() {
        let all = [obs(Pending, 0), obs(Running, 5), obs(Success, 9)];
        assert_eq!(Lifecycle::settle(&all).unwrap().status, Success);
        assert_eq!(Lifecycle::settle(&[]), None);
    }
}
