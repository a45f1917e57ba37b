//! Integrations: inbound connections from providers that post their own webhooks to shiplog
//! (GitHub, GitLab, Jenkins, Argo CD, PagerDuty, Opsgenie), and what shiplog made of each
//! delivery they sent.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who posts to an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IntegrationProvider {
    /// GitHub repository or organization webhooks.
    Github,
    /// GitLab project or group webhooks.
    Gitlab,
    /// Jenkins' Notification plugin.
    Jenkins,
    /// Argo CD notifications.
    Argocd,
    /// PagerDuty v3 webhooks.
    Pagerduty,
    /// Opsgenie alert webhooks.
    Opsgenie,
}

/// A provider name that is not one of [`IntegrationProvider::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a provider: use github, gitlab, jenkins, argocd, pagerduty or opsgenie")]
pub struct InvalidProvider {
    /// What was sent.
    pub given: String,
}

impl IntegrationProvider {
    /// Every provider.
    pub const ALL: [Self; 6] = [
        Self::Github,
        Self::Gitlab,
        Self::Jenkins,
        Self::Argocd,
        Self::Pagerduty,
        Self::Opsgenie,
    ];

    /// The name as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Jenkins => "jenkins",
            Self::Argocd => "argocd",
            Self::Pagerduty => "pagerduty",
            Self::Opsgenie => "opsgenie",
        }
    }

    /// Reads a name (any case, surrounding blanks ignored).
    pub fn parse(value: &str) -> Result<Self, InvalidProvider> {
        let wanted = value.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| InvalidProvider {
                given: value.chars().take(64).collect(),
            })
    }
}

impl fmt::Display for IntegrationProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What shiplog made of one received delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Verdict {
    /// It became events, deployments or incidents (or confirmed the connection).
    Accepted,
    /// Authentic, but nothing shiplog records (the reason says which event and why).
    Ignored,
    /// Refused: not authentic, or not readable (the reason says why).
    Rejected,
}

impl Verdict {
    /// The word as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Ignored => "ignored",
            Self::Rejected => "rejected",
        }
    }

    /// Reads a stored word.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Accepted, Self::Ignored, Self::Rejected]
            .into_iter()
            .find(|v| v.as_str() == value)
    }
}

/// How many received deliveries an integration keeps (older ones are dropped).
pub const DELIVERIES_KEPT: u32 = 100;

/// How long a rotated-out secret stays valid, in hours, so that the provider's settings can be
/// changed without losing deliveries.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// How many refused deliveries (bad signature, unreadable body) of one integration are logged
/// per minute. Its URL is public, so without a bound a flood of forged deliveries would push the
/// real ones out of the last [`DELIVERIES_KEPT`] and cost a write each; the refusals beyond it
/// are still answered, only not logged.
pub const REFUSALS_LOGGED_PER_MINUTE: u32 = 10;

/// Counts one integration's logged refusals in the current minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalBudget {
    minute: i64,
    logged: u32,
}

impl RefusalBudget {
    /// Whether it counts the minute of `unix_seconds` (an older one is as good as empty).
    pub fn is_current(&self, unix_seconds: i64) -> bool {
        self.minute == unix_seconds.div_euclid(60)
    }

    /// Whether a refusal at `unix_seconds` may be logged, counting it if so.
    pub fn admit(&mut self, unix_seconds: i64) -> bool {
        let minute = unix_seconds.div_euclid(60);
        if minute != self.minute {
            *self = Self { minute, logged: 0 };
        }
        if self.logged < REFUSALS_LOGGED_PER_MINUTE {
            self.logged += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_up_to_the_budget_each_minute() {
        let mut budget = RefusalBudget::default();
        let start = 1_700_000_040; // the start of a minute
        let logged = (0..15).filter(|i| budget.admit(start + i % 60)).count();
        assert_eq!(logged, usize::try_from(REFUSALS_LOGGED_PER_MINUTE).unwrap());
        assert!(budget.admit(start + 60), "a new minute, a new budget");
    }

    #[test]
    fn providers_read_back_their_names_and_refuse_others_naming_the_valid_ones() {
        for provider in IntegrationProvider::ALL {
            assert_eq!(IntegrationProvider::parse(provider.as_str()), Ok(provider));
        }
        assert_eq!(
            IntegrationProvider::parse(" GitHub "),
            Ok(IntegrationProvider::Github)
        );
        let error = IntegrationProvider::parse("bitbucket").unwrap_err();
        assert!(error.to_string().contains("github, gitlab"), "{error}");
        for verdict in [Verdict::Accepted, Verdict::Ignored, Verdict::Rejected] {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
    }
}
