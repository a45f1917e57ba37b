//! Incidents: something broken in an environment, opened and resolved, reported by PagerDuty,
//! Opsgenie or the API, and how the updates a source sends about one incident settle into one
//! record whatever order they arrive in.
//!
//! A source sends many updates about one incident (triggered, acknowledged, escalated,
//! resolved, reopened, resolved again), possibly out of order and possibly twice. They are one
//! incident (keyed by source and the source's own id), and [`settle`] folds them:
//!
//! - it opened at the earliest opening time any update gave;
//! - whether it is resolved, and when, is decided by the update that happened last (by the
//!   source's own event time); at equal times a resolution wins, so the result does not depend
//!   on arrival order;
//! - a resolution before the opening (clock skew between systems) is taken as resolved at the
//!   opening: a recovery time is never negative.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// Who reported an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentSource {
    /// `POST /api/v1/incidents`.
    Api,
    /// A PagerDuty v3 webhook.
    Pagerduty,
    /// An Opsgenie alert webhook.
    Opsgenie,
}

impl IncidentSource {
    /// The name as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Pagerduty => "pagerduty",
            Self::Opsgenie => "opsgenie",
        }
    }

    /// Reads a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Api, Self::Pagerduty, Self::Opsgenie]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

impl fmt::Display for IncidentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one update says about the incident's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transition {
    /// It is open (triggered, reopened, acknowledged, escalated…).
    Open,
    /// It was resolved at the update's time.
    Resolve,
}

/// One update about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Observation {
    /// When the source says this happened.
    pub occurred_at: Timestamp,
    /// When the source says the incident opened (its creation time).
    pub opened_at: Timestamp,
    /// Open or resolved.
    pub transition: Transition,
}

/// An incident's settled state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IncidentState {
    /// When it opened: the earliest opening time seen.
    pub opened_at: Timestamp,
    /// When it was resolved; `None` while open.
    pub resolved_at: Option<Timestamp>,
    /// The time of the update that decided `resolved_at`.
    pub changed_at: Timestamp,
}

impl IncidentState {
    /// Whether it is open.
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// Folds one update into an incident's state (`None`: the first update about it).
pub fn settle(current: Option<IncidentState>, seen: Observation) -> IncidentState {
    let decides = match current {
        None => true,
        Some(state) => {
            seen.occurred_at > state.changed_at
                || (seen.occurred_at == state.changed_at
                    && seen.transition == Transition::Resolve
                    && state.resolved_at.is_none())
        }
    };
    let opened_at = current.map_or(seen.opened_at, |state| state.opened_at.min(seen.opened_at));
    let (resolved_at, changed_at) = match current {
        Some(state) if !decides => (state.resolved_at, state.changed_at),
        _ => (
            match seen.transition {
                Transition::Open => None,
                Transition::Resolve => Some(seen.occurred_at),
            },
            seen.occurred_at,
        ),
    };
    IncidentState {
        opened_at,
        // Never before the opening, even when the two systems' clocks disagree.
        resolved_at: resolved_at.map(|at| at.max(opened_at)),
        changed_at,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn seen(occurred: &str, opened: &str, transition: Transition) -> Observation {
        Observation {
            occurred_at: at(occurred),
            opened_at: at(opened),
            transition,
        }
    }

    fn fold(updates: &[Observation]) -> IncidentState {
        let mut state = None;
        for update in updates {
            state = Some(settle(state, *update));
        }
        state.unwrap()
    }

    const OPENED: &str = "2025-03-01T10:00:00Z";

    /// Triggered, resolved, reopened, resolved again: open from 10:00 to 12:00.
    fn updates() -> Vec<Observation> {
        vec![
            seen(OPENED, OPENED, Transition::Open),
            seen("2025-03-01T10:05:00Z", OPENED, Transition::Open),
            seen("2025-03-01T11:00:00Z", OPENED, Transition::Resolve),
            seen("2025-03-01T11:30:00Z", OPENED, Transition::Open),
            seen("2025-03-01T12:00:00Z", OPENED, Transition::Resolve),
        ]
    }

    #[test]
    fn the_last_update_decides_and_the_first_opening_stays() {
        let state = fold(&updates());
        assert_eq!(state.opened_at, at(OPENED));
        assert_eq!(state.resolved_at, Some(at("2025-03-01T12:00:00Z")));
        // A reopening after the last resolution opens it again.
        let reopened = settle(
            Some(state),
            seen("2025-03-01T13:00:00Z", OPENED, Transition::Open),
        );
        assert!(reopened.is_open());
        assert_eq!(reopened.opened_at, at(OPENED));
    }

    #[test]
    fn a_late_trigger_does_not_reopen_a_resolved_incident() {
        // The resolution arrives first and says when the incident opened.
        let resolved = fold(&[seen("2025-03-01T12:00:00Z", OPENED, Transition::Resolve)]);
        let late = settle(Some(resolved), seen(OPENED, OPENED, Transition::Open));
        assert_eq!(late.resolved_at, Some(at("2025-03-01T12:00:00Z")));
    }

    #[test]
    fn a_resolution_before_the_opening_is_taken_at_the_opening() {
        let state = fold(&[seen("2025-03-01T09:59:00Z", OPENED, Transition::Resolve)]);
        assert_eq!(state.resolved_at, Some(at(OPENED)));
    }

    #[test]
    fn sources_round_trip() {
        for source in [
            IncidentSource::Api,
            IncidentSource::Pagerduty,
            IncidentSource::Opsgenie,
        ] {
            assert_eq!(IncidentSource::parse(source.as_str()), Some(source));
        }
        assert_eq!(IncidentSource::parse("nagios"), None);
    }

    proptest! {
        /// Any arrival order, any repeats: the same incident.
        #[test]
        fn arrival_order_and_repeats_do_not_matter(
            order in Just(updates()).prop_shuffle(),
            repeats in proptest::collection::vec(0usize..5, 0..5),
            tie in any::<bool>(),
        ) {
            let mut all = order;
            for index in repeats {
                all.push(all[index]);
            }
            if tie {
                // An opening and a resolution at one instant: resolved, either way round.
                all.push(seen("2025-03-01T12:00:00Z", OPENED, Transition::Open));
            }
            prop_assert_eq!(fold(&all), fold(&updates()));
        }
    }
}
