//! Outgoing hooks: which status changes trigger which events, how each provider spells a
//! deployment status, when a failed delivery is tried again, and how a delivery gets its id.
//!
//! Everything here is a pure rule over plain values; templates, HTTP and storage live outside
//! the domain.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, format_description::BorrowedFormatItem};

use crate::status::DeploymentStatus;

/// An event a hook can subscribe to: the Devopness-compatible `action.*` names and the native
/// `deployment.*` names. One status change can raise one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookEvent {
    /// `action.started`: a deployment became pending or running.
    ActionStarted,
    /// `action.completed`: a deployment succeeded.
    ActionCompleted,
    /// `action.failed`: a deployment failed or was cancelled.
    ActionFailed,
    /// `deployment.started`: a deployment became pending or running.
    DeploymentStarted,
    /// `deployment.succeeded`.
    DeploymentSucceeded,
    /// `deployment.failed`.
    DeploymentFailed,
    /// `deployment.cancelled`.
    DeploymentCancelled,
}

impl HookEvent {
    /// Every event, in documentation order.
    pub const ALL: [Self; 7] = [
        Self::ActionStarted,
        Self::ActionCompleted,
        Self::ActionFailed,
        Self::DeploymentStarted,
        Self::DeploymentSucceeded,
        Self::DeploymentFailed,
        Self::DeploymentCancelled,
    ];

    /// The event's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActionStarted => "action.started",
            Self::ActionCompleted => "action.completed",
            Self::ActionFailed => "action.failed",
            Self::DeploymentStarted => "deployment.started",
            Self::DeploymentSucceeded => "deployment.succeeded",
            Self::DeploymentFailed => "deployment.failed",
            Self::DeploymentCancelled => "deployment.cancelled",
        }
    }

    /// The events a status change raises, Devopness name first. A deployment "starts" when it
    /// first becomes pending or running (pending → running is not a second start); `unknown`
    /// raises nothing.
    pub fn for_transition(from: Option<DeploymentStatus>, to: DeploymentStatus) -> &'static [Self] {
        use DeploymentStatus::{Cancelled, Failed, Pending, Running, Success, Unknown};
        match to {
            Pending | Running if matches!(from, Some(Pending | Running)) => &[],
            Pending | Running => &[Self::ActionStarted, Self::DeploymentStarted],
            Success => &[Self::ActionCompleted, Self::DeploymentSucceeded],
            Failed => &[Self::ActionFailed, Self::DeploymentFailed],
            Cancelled => &[Self::ActionFailed, Self::DeploymentCancelled],
            Unknown => &[],
        }
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event name shiplog does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown hook event {0:?}: use action.started, action.completed, action.failed, \
     deployment.started, deployment.succeeded, deployment.failed or deployment.cancelled"
)]
pub struct UnknownHookEvent(pub String);

impl FromStr for HookEvent {
    type Err = UnknownHookEvent;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == value.trim())
            .ok_or_else(|| UnknownHookEvent(value.to_owned()))
    }
}

/// How each source provider's commit-status API spells a deployment status, for templates
/// (`status.github` and so on).
pub mod provider_state {
    use crate::status::DeploymentStatus::{self, Cancelled, Failed, Pending, Running, Success};

    /// GitHub commit status `state`: `pending|success|failure|error`.
    pub fn github(status: DeploymentStatus) -> &'static str {
        match status {
            Pending | Running => "pending",
            Success => "success",
            Failed => "failure",
            _ => "error",
        }
    }

    /// GitLab commit status `state`: `pending|running|success|failed|canceled`.
    pub fn gitlab(status: DeploymentStatus) -> &'static str {
        match status {
            Pending => "pending",
            Running => "running",
            Success => "success",
            Cancelled => "canceled",
            _ => "failed",
        }
    }

    /// Bitbucket build status `state`: `INPROGRESS|SUCCESSFUL|FAILED|STOPPED`.
    pub fn bitbucket(status: DeploymentStatus) -> &'static str {
        match status {
            Pending | Running => "INPROGRESS",
            Success => "SUCCESSFUL",
            Cancelled => "STOPPED",
            _ => "FAILED",
        }
    }

    /// Devopness action status: `pending|in_progress|completed|failed|cancelled|unknown`.
    pub fn action(status: DeploymentStatus) -> &'static str {
        match status {
            Pending => "pending",
            Running => "in_progress",
            Success => "completed",
            Failed => "failed",
            Cancelled => "cancelled",
            DeploymentStatus::Unknown => "unknown",
        }
    }
}

/// When each attempt of a delivery is made, counted from the previous attempt: the first at
/// once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h. After the eighth attempt
/// fails the delivery is given up.
pub const RETRY_DELAYS_SECONDS: [i64; 8] = [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// The most a `Retry-After` answer can push the next attempt back (a day).
pub const MAX_RETRY_AFTER: Duration = Duration::days(1);

/// What one attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: delivered, done.
    Delivered,
    /// `410 Gone`: the receiver is gone for good; the delivery fails and its hook is disabled.
    Gone,
    /// Anything else (no answer, a time-out, any other status): try again on the schedule.
    Retry,
}

impl Verdict {
    /// Judges an attempt by its HTTP status (`None` when no answer came back).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::Delivered,
            Some(410) => Self::Gone,
            _ => Self::Retry,
        }
    }
}

/// How long to wait after `attempts_made` failed attempts before the next one, or `None` when
/// the schedule is exhausted. A `Retry-After` (honoured on 429 and 503 only, capped at
/// [`MAX_RETRY_AFTER`]) can push the next attempt later, never sooner.
pub fn next_delay(
    attempts_made: u32,
    status: Option<u16>,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(attempts_made).ok()?;
    let scheduled = Duration::seconds(*RETRY_DELAYS_SECONDS.get(index)?);
    let asked = match (status, retry_after) {
        (Some(429 | 503), Some(asked)) => asked.clamp(Duration::ZERO, MAX_RETRY_AFTER),
        _ => Duration::ZERO,
    };
    Some(scheduled.max(asked))
}

const HTTP_DATE: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Reads a `Retry-After` header: delay-seconds or an HTTP date, relative to `now`. A date in the
/// past means zero; anything unreadable is `None` (ignored).
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(Duration::seconds(i64::from(seconds)));
    }
    let at = PrimitiveDateTime::parse(value, HTTP_DATE)
        .ok()?
        .assume_utc();
    Some((at - now).max(Duration::ZERO))
}

/// The id of the delivery of one outbox event to one hook: stable, so a replayed transaction or
/// a second worker can never make two deliveries of the same change, and receivers see the same
/// `webhook-id` on every retry. Shaped like a UUID (version 8, derived from SHA-256).
pub fn delivery_id(outbox_event: &str, hook: &str) -> String {
    let digest = Sha256::new()
        .chain_update(outbox_event.as_bytes())
        .chain_update([0])
        .chain_update(hook.as_bytes())
        .finalize();
    let mut bytes = [0_u8; 16];
    for (byte, from) in bytes.iter_mut().zip(digest.iter()) {
        *byte = *from;
    }
    // Version 8 (custom) and the RFC 9562 variant.
    if let Some(byte) = bytes.get_mut(6) {
        *byte = (*byte & 0x0f) | 0x80;
    }
    if let Some(byte) = bytes.get_mut(8) {
        *byte = (*byte & 0x3f) | 0x80;
    }
    let mut id = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentStatus::*;

    #[test]
    fn transitions_raise_one_devopness_and_one_native_event() {
        assert_eq!(
            HookEvent::for_transition(None, Pending),
            [HookEvent::ActionStarted, HookEvent::DeploymentStarted]
        );
        assert_eq!(HookEvent::for_transition(Some(Pending), Running), []);
        assert_eq!(
            HookEvent::for_transition(Some(Running), Success),
            [HookEvent::ActionCompleted, HookEvent::DeploymentSucceeded]
        );
        assert_eq!(
            HookEvent::for_transition(Some(Running), Failed),
            [HookEvent::ActionFailed, HookEvent::DeploymentFailed]
        );
        assert_eq!(
            HookEvent::for_transition(Some(Pending), Cancelled),
            [HookEvent::ActionFailed, HookEvent::DeploymentCancelled]
        );
        // A failed deployment that is re-run starts again.
        assert_eq!(
            HookEvent::for_transition(Some(Failed), Running),
            [HookEvent::ActionStarted, HookEvent::DeploymentStarted]
        );
        assert_eq!(HookEvent::for_transition(Some(Running), Unknown), []);
    }

    #[test]
    fn event_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for event in HookEvent::ALL {
            assert_eq!(event.as_str().parse::<HookEvent>(), Ok(event));
        }
        let error = "action.finished".parse::<HookEvent>().unwrap_err();
        assert!(error.to_string().contains("action.completed"));
    }

    #[test]
    fn provider_states_use_each_providers_vocabulary() {
        let github: Vec<_> = DeploymentStatus::ALL.map(provider_state::github).into();
        assert_eq!(
            github,
            ["pending", "pending", "success", "failure", "error", "error"]
        );
        let gitlab: Vec<_> = DeploymentStatus::ALL.map(provider_state::gitlab).into();
        assert_eq!(
            gitlab,
            [
                "pending", "running", "success", "failed", "canceled", "failed"
            ]
        );
        let bitbucket: Vec<_> = DeploymentStatus::ALL.map(provider_state::bitbucket).into();
        assert_eq!(
            bitbucket,
            [
                "INPROGRESS",
                "INPROGRESS",
                "SUCCESSFUL",
                "FAILED",
                "STOPPED",
                "FAILED"
            ]
        );
    }

    #[test]
    fn the_schedule_is_eight_attempts_then_nothing() {
        let delays: Vec<i64> = (0..9)
            .map_while(|n| next_delay(n, Some(500), None))
            .map(|d| d.whole_seconds())
            .collect();
        assert_eq!(delays, RETRY_DELAYS_SECONDS);
        assert_eq!(next_delay(8, Some(500), None), None);
    }

    #[test]
    fn retry_after_only_delays_and_only_on_429_and_503() {
        let two_minutes = Some(Duration::minutes(2));
        assert_eq!(
            next_delay(1, Some(429), two_minutes),
            Some(Duration::minutes(2))
        );
        assert_eq!(
            next_delay(1, Some(503), two_minutes),
            Some(Duration::minutes(2))
        );
        // Never sooner than the schedule.
        assert_eq!(
            next_delay(2, Some(429), two_minutes),
            Some(Duration::minutes(5))
        );
        // Ignored on other answers.
        assert_eq!(
            next_delay(1, Some(500), two_minutes),
            Some(Duration::seconds(5))
        );
        // Capped.
        assert_eq!(
            next_delay(1, Some(429), Some(Duration::days(30))),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        assert_eq!(parse_retry_after("120", now), Some(Duration::seconds(120)));
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:01:30 GMT", now),
            Some(Duration::seconds(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::of(Some(200)), Verdict::Delivered);
        assert_eq!(Verdict::of(Some(204)), Verdict::Delivered);
        assert_eq!(Verdict::of(Some(301)), Verdict::Retry);
        assert_eq!(Verdict::of(Some(410)), Verdict::Gone);
        assert_eq!(Verdict::of(Some(500)), Verdict::Retry);
        assert_eq!(Verdict::of(None), Verdict::Retry);
    }

    #[test]
    fn delivery_ids_are_stable_per_event_and_hook() {
        let a = delivery_id("event-1", "hook-1");
        assert_eq!(a, delivery_id("event-1", "hook-1"));
        assert_ne!(a, delivery_id("event-1", "hook-2"));
        assert_ne!(a, delivery_id("event-2", "hook-1"));
        // No ambiguity from concatenation.
        assert_ne!(delivery_id("ab", "c"), delivery_id("a", "bc"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'8');
    }
}
