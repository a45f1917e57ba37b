//! Incident providers' webhooks: PagerDuty v3 and Opsgenie, read into
//! [`ProviderIncident`]s.
//!
//! PagerDuty (v3 webhook subscriptions): `incident.triggered`, `incident.acknowledged`,
//! `incident.unacknowledged`, `incident.escalated`, `incident.reopened` say the incident is
//! open and `incident.resolved` that it was resolved, at the event's `occurred_at`; the
//! incident opened at `data.created_at`. One PagerDuty incident (`data.id`) is one shiplog
//! incident. `pagey.ping` is acknowledged; other event types are ignored, named.
//!
//! Opsgenie (the Webhook integration's alert actions): `Create` opens an incident at the
//! alert's `createdAt`, `Close` resolves it at its `updatedAt`; one alert (`alertId`) is one
//! incident. Other actions (acknowledge, notes, …) do not change an incident and are ignored.
//!
//! Settings of both: `application` (the application code every incident is about; none: the
//! whole project), `environment` (the environment code; none: every production environment),
//! and for PagerDuty `services` (`{"<service id or name>": "<application code>"}`), which wins
//! over `application` for the services it names.

use serde_json::Value;
use shiplog_app::incidents::ProviderIncident;
use shiplog_app::integrations::Translation;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};
use shiplog_domain::incident::{Observation, Transition};
use shiplog_domain::timestamp::Timestamp;

use super::{object, text};

/// The application and environment the settings give, or why they are unusable.
fn place(
    settings: &Value,
    service: Option<&str>,
) -> Result<(Option<ApplicationCode>, Option<EnvironmentCode>), Translation> {
    let mapped = service.and_then(|s| text(settings, &["services", s]));
    let application = mapped
        .or_else(|| text(settings, &["application"]))
        .map(|code| {
            ApplicationCode::parse(code).map_err(|error| {
                Translation::Malformed(format!(
                    "the integration's settings name application {code:?}: {error}"
                ))
            })
        })
        .transpose()?;
    let environment = text(settings, &["environment"])
        .map(|code| {
            EnvironmentCode::parse(code).map_err(|error| {
                Translation::Malformed(format!(
                    "the integration's settings name environment {code:?}: {error}"
                ))
            })
        })
        .transpose()?;
    Ok((application, environment))
}

/// A time as text (RFC 3339) or a number of seconds, milliseconds, microseconds or
/// nanoseconds since 1970 (told apart by size, as Opsgenie sends milliseconds in `createdAt`
/// and nanoseconds in `updatedAt`).
fn time_of(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => Timestamp::parse(text.trim()).ok(),
        Value::Number(number) => {
            let n = number.as_i64()?;
            let micros = match n.unsigned_abs() {
                x if x >= 100_000_000_000_000_000 => n / 1_000,
                x if x >= 100_000_000_000_000 => n,
                x if x >= 100_000_000_000 => n.checked_mul(1_000)?,
                _ => n.checked_mul(1_000_000)?,
            };
            Timestamp::from_unix_micros(micros).ok()
        }
        _ => None,
    }
}

/// The PagerDuty event types that say the incident is open.
const PAGERDUTY_OPEN: [&str; 5] = [
    "incident.triggered",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.escalated",
    "incident.reopened",
];

/// A PagerDuty v3 webhook delivery.
pub(super) fn pagerduty(settings: &Value, body: &[u8]) -> Translation {
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    let Some(event) = payload.get("event") else {
        return Translation::Malformed(
            "event: missing: PagerDuty v3 webhooks wrap everything in `event`; set up a v3 webhook subscription".into(),
        );
    };
    let Some(kind) = text(event, &["event_type"]) else {
        return Translation::Malformed("event.event_type: missing".into());
    };
    let transition = if kind == "incident.resolved" {
        Transition::Resolve
    } else if PAGERDUTY_OPEN.contains(&kind) {
        Transition::Open
    } else if kind == "pagey.ping" {
        return Translation::Acknowledge("pagey.ping: PagerDuty's test event".into());
    } else {
        return Translation::Ignore(format!(
            "{kind} does not open or resolve an incident: shiplog reads {}, and incident.resolved",
            PAGERDUTY_OPEN.join(", ")
        ));
    };
    let Some(data) = event.get("data") else {
        return Translation::Malformed("event.data: missing".into());
    };
    let Some(id) = text(data, &["id"]) else {
        return Translation::Malformed("event.data.id: missing (the incident's id)".into());
    };
    let Some(occurred_at) = event.get("occurred_at").and_then(time_of) else {
        return Translation::Malformed("event.occurred_at: missing or not a time".into());
    };
    let opened_at = data
        .get("created_at")
        .and_then(time_of)
        .unwrap_or(occurred_at);
    let service = text(data, &["service", "id"])
        .filter(|id| text(settings, &["services", id]).is_some())
        .or_else(|| text(data, &["service", "summary"]));
    let (application, environment) = match place(settings, service) {
        Ok(place) => place,
        Err(refusal) => return refusal,
    };
    Translation::Incident(Box::new(ProviderIncident {
        event: kind.to_owned(),
        delivery: text(event, &["id"]).map(str::to_owned),
        external_id: id.to_owned(),
        title: text(data, &["title"]).unwrap_or(id).to_owned(),
        severity: text(data, &["priority", "summary"])
            .or_else(|| text(data, &["urgency"]))
            .map(str::to_owned),
        url: text(data, &["html_url"]).map(str::to_owned),
        application,
        environment,
        observation: Observation {
            occurred_at,
            opened_at,
            transition,
        },
    }))
}

/// An Opsgenie Webhook integration delivery.
pub(super) fn opsgenie(settings: &Value, body: &[u8]) -> Translation {
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    let Some(action) = text(&payload, &["action"]) else {
        return Translation::Malformed("action: missing (Create, Close, …)".into());
    };
    let Some(alert) = payload.get("alert") else {
        return Translation::Malformed("alert: missing".into());
    };
    let Some(id) = text(alert, &["alertId"]) else {
        return Translation::Malformed("alert.alertId: missing".into());
    };
    let Some(opened_at) = alert.get("createdAt").and_then(time_of) else {
        return Translation::Malformed("alert.createdAt: missing or not a time".into());
    };
    let (occurred_at, transition) = match action {
        "Create" => (opened_at, Transition::Open),
        "Close" => match alert.get("updatedAt").and_then(time_of) {
            Some(closed) => (closed, Transition::Resolve),
            None => {
                return Translation::Malformed(
                    "alert.updatedAt: missing or not a time, so when the alert closed is unknown"
                        .into(),
                );
            }
        },
        other => {
            return Translation::Ignore(format!(
                "{other} does not open or close an incident: shiplog reads Create and Close"
            ));
        }
    };
    let (application, environment) = match place(settings, None) {
        Ok(place) => place,
        Err(refusal) => return refusal,
    };
    Translation::Incident(Box::new(ProviderIncident {
        event: action.to_owned(),
        delivery: None,
        external_id: id.to_owned(),
        title: text(alert, &["message"]).unwrap_or(id).to_owned(),
        severity: text(alert, &["priority"]).map(str::to_owned),
        url: None,
        application,
        environment,
        observation: Observation {
            occurred_at,
            opened_at,
            transition,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_whatever_their_unit() {
        let expected = Timestamp::parse("2017-11-16T10:11:33.817Z").unwrap();
        for value in [
            serde_json::json!("2017-11-16T10:11:33.817Z"),
            serde_json::json!(1_510_827_093_817_i64),
            serde_json::json!(1_510_827_093_817_000_i64),
            serde_json::json!(1_510_827_093_817_000_000_i64),
        ] {
            assert_eq!(time_of(&value), Some(expected), "{value}");
        }
        assert_eq!(
            time_of(&serde_json::json!(1_510_827_093)),
            Some(Timestamp::parse("2017-11-16T10:11:33Z").unwrap())
        );
        assert_eq!(time_of(&serde_json::json!(true)), None);
    }
}
