//! When a commit was first seen: the start of a deployment's lead time, kept up to date as
//! pipeline events arrive in any order.
//!
//! Lead time for changes (see [`crate::dora`]) starts at a deployment's commit timestamp when
//! the pipeline sent one, else at the first pipeline event seen for its commit **other than the
//! deployment's own**. Recomputing that minimum for every deployment of a DORA window costs one
//! index seek per deployment. Instead, a store keeps one [`Sightings`] per commit, folds each new
//! event into it with [`Sightings::with`], and stores [`Sightings::seen_before`] on each
//! deployment of the commit. Two values are enough for every deployment at once: the first
//! event (and whose it was), and the first event of anyone else. The fold gives the same state
//! whatever order the events come in, and [`Sightings::of`] computes it from a whole list, as
//! the reference the fold is tested against.

use crate::timestamp::Timestamp;

/// Where a deployment's lead time starts: the commit timestamp its pipeline `sent`, else when
/// the commit was first `seen` in another event, but only if that was by the deployment's
/// finish. A sighting after the finish (typically a later deployment of the same commit to
/// another environment) cannot date the commit: the deployment then has no commit time, rather
/// than a commit that seems to come after it. A sent timestamp after the finish stays: that is
/// clock skew, and the metrics say so.
///
/// ```
/// use shiplog_domain::sighting::lead_time_start;
/// use shiplog_domain::timestamp::Timestamp;
/// let t = |s: &str| Timestamp::parse(s).unwrap();
/// let finished = t("2025-03-03T10:00:00Z");
/// assert_eq!(lead_time_start(None, Some(t("2025-03-03T09:00:00Z")), finished), Some(t("2025-03-03T09:00:00Z")));
/// assert_eq!(lead_time_start(None, Some(t("2025-03-04T09:00:00Z")), finished), None);
/// assert_eq!(lead_time_start(Some(t("2025-03-04T09:00:00Z")), None, finished), Some(t("2025-03-04T09:00:00Z")));
/// ```
pub fn lead_time_start(
    sent: Option<Timestamp>,
    seen: Option<Timestamp>,
    finished: Timestamp,
) -> Option<Timestamp> {
    sent.or_else(|| seen.filter(|seen| *seen <= finished))
}

/// What is known of one commit's pipeline events. `D` identifies a deployment; an event of no
/// deployment (a build, a test) has `None`, which differs from every deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sightings<D> {
    /// The earliest event's time.
    pub first_at: Timestamp,
    /// The deployment the earliest event belongs to, if any (of several earliest events, the
    /// one folded in first).
    pub first_by: Option<D>,
    /// The earliest event that does not belong to `first_by`, if there is one.
    pub other_at: Option<Timestamp>,
}

/// Which deployments of a commit may need their stored start rewritten after a fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected<D> {
    /// None: every deployment's start is what it was.
    Nobody,
    /// Only this deployment (the owner of the first event: the first event of anyone else
    /// moved).
    Only(D),
    /// Any deployment of the commit.
    Everyone,
}

impl<D: Clone + PartialEq> Sightings<D> {
    /// The state after one event.
    pub fn first(at: Timestamp, by: Option<D>) -> Self {
        Self {
            first_at: at,
            first_by: by,
            other_at: None,
        }
    }

    /// The state after one more event, at `at`, of deployment `by` (`None`: of no deployment).
    #[must_use]
    pub fn with(&self, at: Timestamp, by: Option<D>) -> Self {
        if at < self.first_at {
            // The new event is the earliest. Of the events before it, the earliest of anyone
            // but `by` is the old first event if it was someone else's, else what it was.
            let other_at = if self.first_by == by {
                self.other_at
            } else {
                Some(self.first_at)
            };
            Self {
                first_at: at,
                first_by: by,
                other_at,
            }
        } else if self.first_by == by {
            self.clone()
        } else {
            Self {
                first_at: self.first_at,
                first_by: self.first_by.clone(),
                other_at: Some(self.other_at.map_or(at, |other| other.min(at))),
            }
        }
    }

    /// The state of a list of events, computed from the whole list (the reference for
    /// [`Self::with`]); `None` for no events.
    pub fn of(events: &[(Timestamp, Option<D>)]) -> Option<Self> {
        let (first_at, first_by) = events.iter().min_by_key(|(at, _)| *at)?;
        let other_at = events
            .iter()
            .filter(|(_, by)| by != first_by)
            .map(|(at, _)| *at)
            .min();
        Some(Self {
            first_at: *first_at,
            first_by: first_by.clone(),
            other_at,
        })
    }

    /// When the commit was first seen in an event that is not `deployment`'s own: where its lead
    /// time starts when no commit timestamp was sent. `None` when only its own events are known.
    pub fn seen_before(&self, deployment: &D) -> Option<Timestamp> {
        if self.first_by.as_ref() == Some(deployment) {
            self.other_at
        } else {
            Some(self.first_at)
        }
    }

    /// Which deployments' [`Self::seen_before`] may differ between `before` (the state a
    /// writer read earlier; `None`: no event of the commit was known) and `self`, the state
    /// after the writer folded in its own event `(at, by)`. Because the fold only ever moves
    /// times earlier, another writer's event folded in between shows as a difference too.
    pub fn affected(&self, before: Option<&Self>, at: Timestamp, by: Option<&D>) -> Affected<D> {
        let before = match before {
            Some(before) => before.clone(),
            // Nothing known before: if the state is exactly this event's, no deployment
            // could have had a start from this commit.
            None if *self == Self::first(at, by.cloned()) => return Affected::Nobody,
            None => return Affected::Everyone,
        };
        if before.first_at != self.first_at || before.first_by != self.first_by {
            Affected::Everyone
        } else if before.other_at == self.other_at {
            Affected::Nobody
        } else {
            match &self.first_by {
                Some(owner) => Affected::Only(owner.clone()),
                None => Affected::Nobody,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + second * 1_000_000).unwrap()
    }

    #[test]
    fn a_deployment_is_not_its_own_start() {
        // Deploy D at 10 s, then a build (no deployment) at 5 s arrives late.
        let s = Sightings::first(t(10), Some("d"));
        assert_eq!(s.seen_before(&"d"), None, "only its own event is known");
        assert_eq!(s.seen_before(&"e"), Some(t(10)), "d's event counts for e");
        let s = s.with(t(5), None);
        assert_eq!(s.seen_before(&"d"), Some(t(5)));
        assert_eq!(
            s.other_at,
            Some(t(10)),
            "d's event is the first of anyone but the build"
        );
        // A second deployment of the commit, later: d's start stays at the build.
        let s = s.with(t(20), Some("e"));
        assert_eq!(s.seen_before(&"d"), Some(t(5)));
        assert_eq!(s.seen_before(&"e"), Some(t(5)));
    }

    #[test]
    fn the_owner_of_the_first_event_starts_at_the_first_of_anyone_else() {
        let s = Sightings::first(t(1), Some("d")).with(t(3), Some("d"));
        assert_eq!(s.seen_before(&"d"), None);
        let s = s.with(t(7), Some("e")).with(t(6), None);
        assert_eq!(s.seen_before(&"d"), Some(t(6)));
        assert_eq!(s.seen_before(&"e"), Some(t(1)));
    }

    #[test]
    fn what_a_fold_changes_is_named() {
        let d = Some("d");
        let before = Sightings::first(t(10), d);
        // Nothing known before and nothing else folded in: nobody.
        assert_eq!(before.affected(None, t(10), d.as_ref()), Affected::Nobody);
        // Nothing known before, but another writer's event got in first: everyone.
        let raced = before.with(t(12), Some("e"));
        assert_eq!(raced.affected(None, t(10), d.as_ref()), Affected::Everyone);
        // A later event of someone else moves only the owner's start.
        assert_eq!(
            raced.affected(Some(&before), t(12), Some(&"e")),
            Affected::Only("d")
        );
        // An earlier event moves everyone's.
        let earlier = before.with(t(2), None);
        assert_eq!(
            earlier.affected(Some(&before), t(2), None),
            Affected::Everyone
        );
        // The owner's own later event changes nothing.
        let same = before.with(t(11), d);
        assert_eq!(
            same.affected(Some(&before), t(11), d.as_ref()),
            Affected::Nobody
        );
    }

    fn events() -> impl Strategy<Value = Vec<(Timestamp, Option<u8>)>> {
        proptest::collection::vec(
            (0i64..20, proptest::option::of(0u8..4)).prop_map(|(s, d)| (t(s), d)),
            1..12,
        )
    }

    proptest! {
        #[test]
        fn folding_in_any_order_gives_every_deployment_the_same_start(events in events()) {
            let reference = Sightings::of(&events).unwrap();
            let (head, rest) = events.split_first().unwrap();
            let folded = rest
                .iter()
                .fold(Sightings::first(head.0, head.1), |s, (at, by)| s.with(*at, *by));
            for deployment in 0u8..4 {
                // The definition: the earliest event that is not the deployment's own.
                let expected = events
                    .iter()
                    .filter(|(_, by)| *by != Some(deployment))
                    .map(|(at, _)| *at)
                    .min();
                prop_assert_eq!(folded.seen_before(&deployment), expected);
                prop_assert_eq!(reference.seen_before(&deployment), expected);
            }
        }

        #[test]
        fn a_deployment_not_named_as_affected_keeps_its_start(
            earlier in events(),
            later in events(),
        ) {
            // A writer read `before`; other writers then folded in `raced`... here the writer's own
            // event is the last of `later`, and the rest of `later` raced in between.
            let before = Sightings::of(&earlier).unwrap();
            let after = later.iter().fold(before.clone(), |s, (at, by)| s.with(*at, *by));
            let (at, by) = *later.last().unwrap();
            let affected = after.affected(Some(&before), at, by.as_ref());
            for deployment in 0u8..4 {
                let named = match &affected {
                    Affected::Nobody => false,
                    Affected::Only(d) => *d == deployment,
                    Affected::Everyone => true,
                };
                if !named {
                    prop_assert_eq!(
                        after.seen_before(&deployment),
                        before.seen_before(&deployment)
                    );
                }
            }
        }
    }
}
