//! The delivery worker's round ([`App::deliver_due`]) and test sends ([`App::test_hook`]).

use futures_util::future::join_all;
use shiplog_domain::hook::{Verdict, next_delay, parse_retry_after};
use shiplog_domain::timestamp::Timestamp;
use time::Duration;

use super::template::{self, Rendered, Variables};
use super::{
    Attempt, AttemptRecord, ClaimedDelivery, Delivery, DeliveryClaim, DeliveryOutcome,
    DeliveryStatus, Hook, OutgoingRequest, RESPONSE_BODY_KEPT, SecretText, SendResult,
};
use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::DeliveryId;

/// How a worker claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// This worker's id (unique per process).
    pub owner: String,
    /// How long a claim lasts without a report: longer than the 15 s send time-out, so only a
    /// worker that died (or hung) loses its deliveries to another.
    pub lease: Duration,
    /// The most deliveries one worker sends at once.
    pub batch: u32,
    /// The most deliveries of one workspace in flight at once, across every worker: a
    /// workspace whose targets are slow waits for its own, never holds up another's.
    pub per_workspace: u32,
}

/// The most deliveries a worker sends at once.
pub const MAX_IN_FLIGHT: u32 = 32;
/// The most deliveries of one workspace in flight at once, across every server.
pub const MAX_IN_FLIGHT_PER_WORKSPACE: u32 = 8;

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            owner: "shiplog".to_owned(),
            lease: Duration::seconds(60),
            batch: MAX_IN_FLIGHT,
            per_workspace: MAX_IN_FLIGHT_PER_WORKSPACE,
        }
    }
}

impl App {
    /// One round of the delivery worker: leases the due deliveries, sends them concurrently and
    /// records each attempt. Returns how many were attempted. The server calls this in a loop;
    /// tests call it with their own clock.
    pub async fn deliver_due(&self, settings: &WorkerSettings) -> Result<usize, AppError> {
        let claimed = self.claim_due(settings, settings.batch).await?;
        let count = claimed.len();
        let results = join_all(
            claimed
                .into_iter()
                .map(|claim| self.attempt_delivery(claim, &settings.owner)),
        )
        .await;
        for result in results {
            result?;
        }
        Ok(count)
    }

    /// Leases up to `limit` due deliveries to this worker, fairly: the first due delivery of
    /// every workspace before the second of any, and no workspace past
    /// [`WorkerSettings::per_workspace`] in flight. The server's worker claims whenever it has
    /// free places ([`WorkerSettings::batch`] in all) and sends each claim at once
    /// ([`App::attempt_delivery`]), so a slow target holds up only its own place.
    pub async fn claim_due(
        &self,
        settings: &WorkerSettings,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, AppError> {
        let now = self.ports.clock.now();
        let lease_until = now.checked_add(settings.lease).unwrap_or(now);
        Ok(self
            .ports
            .hooks
            .claim_deliveries(DeliveryClaim {
                owner: settings.owner.clone(),
                now,
                lease_until,
                limit,
                per_workspace: settings.per_workspace,
            })
            .await?)
    }

    /// Renders, signs and sends one claimed delivery, and records the attempt.
    pub async fn attempt_delivery(
        &self,
        claim: ClaimedDelivery,
        owner: &str,
    ) -> Result<(), AppError> {
        let number = claim.attempts_made.saturating_add(1);
        let started = self.ports.clock.now();
        let variables = Variables::for_delivery(&claim, number, &self.public_url);
        let hook = claim.hook.clone();
        let at = started.to_rfc3339();
        let rendered = self
            .offload(move || template::render(&hook, &variables, &at))
            .await?;
        let (result, render_failed) = match rendered {
            Ok(rendered) => (
                self.send(&claim.hook, claim.id, rendered, started).await,
                false,
            ),
            Err(error) => (
                SendResult {
                    error: Some(format!("template error: {error}")),
                    ..SendResult::default()
                },
                true,
            ),
        };
        let verdict = Verdict::of(result.status);
        let outcome = match verdict {
            Verdict::Delivered => DeliveryOutcome::Delivered,
            Verdict::Gone => DeliveryOutcome::Failed,
            Verdict::Retry if render_failed => DeliveryOutcome::Failed,
            Verdict::Retry => {
                let now = self.ports.clock.now();
                let retry_after = result
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, now.as_offset_date_time()));
                match next_delay(number, result.status, retry_after)
                    .and_then(|delay| now.checked_add(delay))
                {
                    Some(at) => DeliveryOutcome::RetryAt(at),
                    None => DeliveryOutcome::Failed,
                }
            }
        };
        tracing::info!(
            delivery = %claim.id,
            hook = %claim.hook.id,
            event = claim.event.as_str(),
            attempt = number,
            status = result.status,
            outcome = ?outcome,
            "hook delivery attempt"
        );
        let record = AttemptRecord {
            workspace: claim.hook.workspace,
            delivery: claim.id,
            hook: claim.hook.id,
            owner: owner.to_owned(),
            attempt: attempt_of(number, started, result),
            outcome,
            disable_hook: (verdict == Verdict::Gone)
                .then(|| "the target answered 410 Gone".to_owned()),
            at: self.ports.clock.now(),
        };
        Ok(self.ports.hooks.record_attempt(record).await?)
    }

    /// Signs and sends a rendered request.
    async fn send(
        &self,
        hook: &Hook,
        id: DeliveryId,
        rendered: Rendered,
        at: Timestamp,
    ) -> SendResult {
        let webhook_id = id.to_string();
        let timestamp = at.unix_seconds();
        let Some(signature) = self.ports.signer.sign(
            hook.signing_secret.reveal(),
            &webhook_id,
            timestamp,
            &rendered.body,
        ) else {
            return SendResult {
                error: Some("the hook's signing secret is unreadable".to_owned()),
                ..SendResult::default()
            };
        };
        if let Err(why) = self.ports.sender.check_target(rendered.url.reveal()) {
            return SendResult {
                error: Some(format!("target refused: {why}")),
                ..SendResult::default()
            };
        }
        let headers = vec![
            (
                "content-type".to_owned(),
                SecretText::new("application/json"),
            ),
            (
                "user-agent".to_owned(),
                SecretText::new(concat!("shiplog/", env!("CARGO_PKG_VERSION"))),
            ),
            ("webhook-id".to_owned(), SecretText::new(webhook_id)),
            (
                "webhook-timestamp".to_owned(),
                SecretText::new(timestamp.to_string()),
            ),
            ("webhook-signature".to_owned(), SecretText::new(signature)),
        ];
        self.ports
            .sender
            .send(OutgoingRequest {
                method: hook.request.method,
                url: rendered.url,
                headers,
                hook_headers: rendered.headers,
                body: rendered.body,
            })
            .await
    }

    /// Sends one test delivery now, with sample values (the hook's own project, application and
    /// environment codes and secrets), and records it in the hook's deliveries as `hook.test`.
    /// Not retried; works on disabled hooks too.
    pub async fn test_hook(&self, caller: &Principal, id: &str) -> Result<Delivery, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let hook = self.visible_hook(caller, id).await?;
        let delivery_id = DeliveryId::from_uuid(self.ports.ids.uuid());
        let started = self.ports.clock.now();
        let application_token = self.application_has_token(&hook).await?;
        let mut variables = Variables::sample(&hook, &self.public_url, application_token);
        variables.set_test(&delivery_id.to_string());
        let rendering = hook.clone();
        let at = started.to_rfc3339();
        let rendered = self
            .offload(move || template::render(&rendering, &variables, &at))
            .await?;
        let result = match rendered {
            Ok(rendered) => self.send(&hook, delivery_id, rendered, started).await,
            Err(error) => SendResult {
                error: Some(format!("template error: {error}")),
                ..SendResult::default()
            },
        };
        let status = match Verdict::of(result.status) {
            Verdict::Delivered => DeliveryStatus::Delivered,
            _ => DeliveryStatus::Failed,
        };
        let now = self.ports.clock.now();
        let delivery = Delivery {
            id: delivery_id,
            hook: hook.id,
            event: TEST_EVENT.to_owned(),
            deployment: None,
            status,
            next_attempt_at: None,
            attempts: vec![attempt_of(1, started, result)],
            created_at: started,
            updated_at: now,
        };
        self.ports
            .hooks
            .record_test_delivery(caller.workspace, delivery.clone())
            .await?;
        Ok(delivery)
    }
}

/// The event name of test sends.
pub const TEST_EVENT: &str = "hook.test";

fn attempt_of(number: u32, at: Timestamp, result: SendResult) -> Attempt {
    Attempt {
        number,
        at,
        duration_ms: result.duration_ms,
        status_code: result.status,
        error: result.error,
        response_body: result.body.map(|b| truncate(b, RESPONSE_BODY_KEPT)),
    }
}

/// Cuts text to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abcdef".to_owned(), 4), "abcd");
        assert_eq!(truncate("ab".to_owned(), 4), "ab");
        // 'é' is two bytes: cutting inside it keeps what comes before.
        assert_eq!(truncate("aé".to_owned(), 2), "a");
    }
}
