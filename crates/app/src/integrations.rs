//! Integrations: a provider's own webhooks (GitHub, GitLab, Jenkins, Argo CD, PagerDuty,
//! Opsgenie) received at a URL of their own, authenticated with a secret of their own.
//!
//! An admin creates one (`provider`, `name`, optionally a project and provider settings); the
//! answer shows its secret once, and the URL to paste into the provider's webhook settings.
//! Rotating the secret keeps the old one valid for [`ROTATION_GRACE_HOURS`], so the provider's
//! settings can be changed without losing deliveries. Each integration keeps a log of the last
//! [`DELIVERIES_KEPT`] deliveries it received and what became of each (accepted, ignored or
//! rejected, with why), so an operator can see why a webhook did nothing.

use serde::Serialize;
use shiplog_domain::ids::{CommitSha, ProjectSlug};
use shiplog_domain::integration::{
    DELIVERIES_KEPT, IntegrationProvider, ROTATION_GRACE_HOURS, Verdict,
};
use shiplog_domain::key::SigningSecret;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{IntegrationId, ProjectId, ReceivedId, WorkspaceId};
use crate::ingest::ApplicationRef;
use crate::model::ProjectLookup;

/// An integration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRecord {
    /// Its id, which its webhook URL carries.
    pub id: IntegrationId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// The project its events go to, if one.
    pub project: Option<ProjectId>,
    /// Who posts to it.
    pub provider: IntegrationProvider,
    /// A label.
    pub name: String,
    /// The provider's settings (a JSON object; which workflows are deploys, and the like).
    pub settings: serde_json::Value,
    /// The secret deliveries are checked with.
    pub secret: SigningSecret,
    /// The secret before the last rotation, valid until `previous_until`.
    pub previous_secret: Option<SigningSecret>,
    /// When the previous secret stops working.
    pub previous_until: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its secret was last rotated.
    pub rotated_at: Option<Timestamp>,
}

/// An integration as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Integration))]
pub struct IntegrationView {
    /// Its id.
    pub id: IntegrationId,
    /// Who posts to it.
    pub provider: IntegrationProvider,
    /// Its label.
    pub name: String,
    /// The project its events go to, if one.
    pub project: Option<ProjectSlug>,
    /// The provider's settings.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// The URL to paste into the provider's webhook settings.
    pub webhook_url: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its secret was last rotated.
    pub rotated_at: Option<Timestamp>,
    /// Until when the secret before the last rotation is still accepted.
    pub previous_secret_valid_until: Option<Timestamp>,
}

/// An integration just created or rotated: its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IntegrationWithSecret))]
pub struct IntegrationSecret {
    /// The integration.
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// The secret to give the provider (GitHub's "Secret", GitLab's "Secret token", …); it is
    /// not shown again.
    pub secret: String,
}

/// One delivery an integration received, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceivedDelivery {
    /// Its id.
    pub id: ReceivedId,
    /// The integration.
    #[serde(skip)]
    pub integration: IntegrationId,
    /// The integration's workspace.
    #[serde(skip)]
    pub workspace: WorkspaceId,
    /// When it arrived.
    pub received_at: Timestamp,
    /// The provider's event name (`deployment_status`, `Pipeline Hook`, …), if it said one.
    pub event: Option<String>,
    /// The provider's delivery id, if it sent one.
    pub delivery: Option<String>,
    /// What became of it.
    pub verdict: Verdict,
    /// Why, for ignored and rejected deliveries; what it recorded, for accepted ones.
    pub reason: String,
}

/// A new integration as a client sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntegration {
    /// `github`, `gitlab`, `jenkins`, `argocd`, `pagerduty` or `opsgenie`.
    pub provider: String,
    /// A label.
    pub name: String,
    /// The project its events go to.
    pub project: Option<ProjectSlug>,
    /// The provider's settings; `None` is `{}`.
    pub settings: Option<serde_json::Value>,
}

/// One delivery a provider posted to an integration's URL, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The provider's event name (`X-GitHub-Event`), if sent.
    pub event: Option<String>,
    /// The provider's delivery id (`X-GitHub-Delivery`), if sent.
    pub delivery: Option<String>,
    /// The provider's signature header (`X-Hub-Signature-256`), if sent.
    pub signature: Option<String>,
    /// The provider's plain token (`X-Gitlab-Token`, `X-Shiplog-Token`, or the URL's `token`),
    /// if sent.
    pub token: Option<String>,
    /// The raw body, as signed.
    pub body: Vec<u8>,
}

/// What an adapter makes of an authentic delivery of its provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Translation {
    /// An event to record (a deploy, a build, a test).
    Ingest(Box<crate::ingest::IngestCommand>),
    /// An incident opened, changed or resolved.
    Incident(Box<crate::incidents::ProviderIncident>),
    /// Commits and their own times (a push, a merged change request): where lead time starts
    /// at the latest for deployments of them. The reason says what they were.
    Commits {
        /// The commits and their times.
        commits: Vec<(CommitSha, Timestamp)>,
        /// The change request they belong to (a merged pull request), linked to the
        /// deployments of these commits, with the repository that tells its project.
        request: Option<(ReferenceKey, Option<RepoIdentity>)>,
        /// What they were, for the log.
        reason: String,
    },
    /// Nothing to record, and nothing wrong (a ping); the reason says what it was.
    Acknowledge(String),
    /// An event shiplog does not read; the reason says which and what it reads instead.
    Ignore(String),
    /// Not readable (bad JSON, a missing field); the reason names what is wrong.
    Malformed(String),
}

/// How an adapter reads its providers' payloads: the provider, the integration's settings, the
/// event name (if the provider sent one) and the raw body, into what to record.
pub type Translator =
    dyn Fn(IntegrationProvider, &serde_json::Value, Option<&str>, &[u8]) -> Translation + Sync;

/// What became of a received delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiveOutcome {
    /// Accepted or ignored (a refusal is an error instead).
    pub verdict: Verdict,
    /// Why, or what it recorded.
    pub reason: String,
    /// What happened, when the provider names it only in the body (PagerDuty's event type,
    /// Opsgenie's action).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The provider's id of the delivery, when it is only in the body (PagerDuty's `event.id`),
    /// for the delivery log.
    #[serde(skip)]
    pub delivery: Option<String>,
}

/// The longest name accepted.
const MAX_NAME: usize = 100;
/// The shortest secret a provider may choose (PagerDuty's are longer).
const MIN_CHOSEN_SECRET: usize = 16;
/// The longest secret a provider may choose.
const MAX_CHOSEN_SECRET: usize = 256;
/// The largest settings object accepted, serialized.
const MAX_SETTINGS_BYTES: usize = 16 * 1024;

impl IntegrationRecord {
    /// Who a delivery acts as: an `ingest` principal of the integration's workspace and project.
    fn principal(&self) -> Principal {
        Principal {
            workspace: self.workspace,
            role: shiplog_domain::key::Role::Ingest,
            project: self.project,
            actor: crate::audit::Actor::Integration {
                id: self.id.to_string(),
            },
            address: None,
        }
    }
}

impl App {
    async fn audit_integration(
        &self,
        caller: &Principal,
        action: crate::audit::AuditAction,
        record: &IntegrationRecord,
    ) {
        self.audit(
            caller.origin(),
            Some(caller.workspace),
            action,
            crate::audit::AuditTarget {
                kind: "integration",
                id: record.id.to_string(),
                name: Some(record.name.clone()),
            },
        )
        .await;
    }

    fn integration_view(
        &self,
        record: &IntegrationRecord,
        project: Option<ProjectSlug>,
    ) -> IntegrationView {
        IntegrationView {
            id: record.id,
            provider: record.provider,
            name: record.name.clone(),
            project,
            settings: record.settings.clone(),
            webhook_url: format!(
                "{}/api/v1/integrations/{}/webhook",
                self.public_url, record.id
            ),
            created_at: record.created_at,
            rotated_at: record.rotated_at,
            previous_secret_valid_until: record
                .previous_until
                .filter(|_| record.previous_secret.is_some()),
        }
    }

    /// The slug of an integration's project.
    async fn integration_project(
        &self,
        caller: &Principal,
        record: &IntegrationRecord,
    ) -> Result<Option<ProjectSlug>, AppError> {
        match record.project {
            None => Ok(None),
            Some(id) => Ok(Some(
                self.visible_project(caller, &ProjectLookup::Id(id))
                    .await?
                    .slug,
            )),
        }
    }

    /// An integration the caller may see: of its workspace, and of its project when the key is
    /// limited to one.
    async fn visible_integration(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<IntegrationRecord, AppError> {
        let not_found = || AppError::IntegrationNotFound(id.chars().take(80).collect());
        let parsed = IntegrationId::parse(id).ok_or_else(not_found)?;
        let record = self
            .ports
            .integrations
            .integration(caller.workspace, parsed)
            .await?
            .ok_or_else(not_found)?;
        if caller.project.is_some() && record.project != caller.project {
            return Err(not_found());
        }
        Ok(record)
    }

    /// Creates an integration (admins); its secret is in the answer and shown only there.
    pub async fn create_integration(
        &self,
        caller: &Principal,
        request: NewIntegration,
    ) -> Result<IntegrationSecret, AppError> {
        caller.require(Capability::Administer, "manage integrations")?;
        let provider = IntegrationProvider::parse(&request.provider)
            .map_err(|e| AppError::invalid("provider", e.to_string()))?;
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(AppError::invalid(
                "name",
                format!("send 1 to {MAX_NAME} characters"),
            ));
        }
        AppError::check_line("name", &name)?;
        let settings = request.settings.unwrap_or_else(|| serde_json::json!({}));
        if !settings.is_object() {
            return Err(AppError::invalid("settings", "send a JSON object"));
        }
        if settings.to_string().len() > MAX_SETTINGS_BYTES {
            return Err(AppError::invalid(
                "settings",
                format!("send at most {MAX_SETTINGS_BYTES} bytes"),
            ));
        }
        let project = match (&request.project, caller.project) {
            (Some(slug), _) => Some(
                self.visible_project(caller, &ProjectLookup::Slug(slug.clone()))
                    .await?,
            ),
            (None, Some(id)) => Some(self.visible_project(caller, &ProjectLookup::Id(id)).await?),
            (None, None) => None,
        };
        if project.is_none()
            && matches!(
                provider,
                IntegrationProvider::Pagerduty | IntegrationProvider::Opsgenie
            )
        {
            return Err(AppError::invalid(
                "project",
                format!(
                    "is required for {provider}: its incidents count in a project's metrics; name the project (slug)"
                ),
            ));
        }
        let secret = SigningSecret::from_random(self.ports.ids.secret_bytes());
        let record = IntegrationRecord {
            id: IntegrationId::from_uuid(self.ports.ids.uuid()),
            workspace: caller.workspace,
            project: project.as_ref().map(|p| p.id),
            provider,
            name,
            settings,
            secret: secret.clone(),
            previous_secret: None,
            previous_until: None,
            created_at: self.ports.clock.now(),
            rotated_at: None,
        };
        self.ports
            .integrations
            .create_integration(record.clone())
            .await?;
        self.audit_integration(
            caller,
            crate::audit::AuditAction::IntegrationCreated,
            &record,
        )
        .await;
        Ok(IntegrationSecret {
            integration: self.integration_view(&record, project.map(|p| p.slug)),
            secret: secret.reveal().to_owned(),
        })
    }

    /// The integrations the caller may see, oldest first.
    pub async fn list_integrations(
        &self,
        caller: &Principal,
    ) -> Result<Vec<IntegrationView>, AppError> {
        caller.require(Capability::Read, "read integrations")?;
        let mut views = Vec::new();
        for record in self
            .ports
            .integrations
            .integrations(caller.workspace)
            .await?
        {
            if caller.project.is_some() && record.project != caller.project {
                continue;
            }
            let project = self.integration_project(caller, &record).await?;
            views.push(self.integration_view(&record, project));
        }
        Ok(views)
    }

    /// One integration, without its secret.
    pub async fn get_integration(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<IntegrationView, AppError> {
        caller.require(Capability::Read, "read integrations")?;
        let record = self.visible_integration(caller, id).await?;
        let project = self.integration_project(caller, &record).await?;
        Ok(self.integration_view(&record, project))
    }

    /// A new secret (admins), shown once; the old one stays valid for
    /// [`ROTATION_GRACE_HOURS`]. `chosen` is a secret the provider chose itself (PagerDuty shows
    /// its own signing secret and cannot be given one); without it shiplog makes one.
    pub async fn rotate_integration_secret(
        &self,
        caller: &Principal,
        id: &str,
        chosen: Option<String>,
    ) -> Result<IntegrationSecret, AppError> {
        caller.require(Capability::Administer, "manage integrations")?;
        let chosen = chosen
            .map(|secret| {
                let secret = secret.trim().to_owned();
                let length = secret.chars().count();
                if !(MIN_CHOSEN_SECRET..=MAX_CHOSEN_SECRET).contains(&length)
                    || !secret.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(AppError::invalid(
                        "secret",
                        format!(
                            "must be {MIN_CHOSEN_SECRET} to {MAX_CHOSEN_SECRET} printable characters without spaces: paste the provider's signing secret as it shows it"
                        ),
                    ));
                }
                Ok(secret)
            })
            .transpose()?;
        let mut record = self.visible_integration(caller, id).await?;
        let now = self.ports.clock.now();
        let secret = match chosen {
            Some(secret) => SigningSecret::from_stored(secret),
            None => SigningSecret::from_random(self.ports.ids.secret_bytes()),
        };
        record.previous_secret = Some(std::mem::replace(&mut record.secret, secret.clone()));
        record.previous_until = now.checked_add(time::Duration::hours(ROTATION_GRACE_HOURS));
        record.rotated_at = Some(now);
        if !self
            .ports
            .integrations
            .update_integration(record.clone())
            .await?
        {
            return Err(AppError::IntegrationNotFound(id.chars().take(80).collect()));
        }
        self.audit_integration(
            caller,
            crate::audit::AuditAction::IntegrationSecretRotated,
            &record,
        )
        .await;
        let project = self.integration_project(caller, &record).await?;
        Ok(IntegrationSecret {
            integration: self.integration_view(&record, project),
            secret: secret.reveal().to_owned(),
        })
    }

    /// Deletes an integration (admins); the provider's deliveries are refused from then on.
    pub async fn delete_integration(&self, caller: &Principal, id: &str) -> Result<(), AppError> {
        caller.require(Capability::Administer, "manage integrations")?;
        let record = self.visible_integration(caller, id).await?;
        if self
            .ports
            .integrations
            .delete_integration(caller.workspace, record.id)
            .await?
        {
            self.audit_integration(
                caller,
                crate::audit::AuditAction::IntegrationDeleted,
                &record,
            )
            .await;
            Ok(())
        } else {
            Err(AppError::IntegrationNotFound(id.chars().take(80).collect()))
        }
    }

    /// Receives one delivery of a provider at an integration's URL: checks it is authentic
    /// (the integration's secret, or the previous one during its grace period) before anything
    /// else, lets `translate` read it, records what it says as the integration (an `ingest`
    /// principal of its workspace and project), and logs the verdict. A refusal is logged too
    /// and returned as the error the provider is answered with.
    pub async fn receive_integration(
        &self,
        id: &str,
        received: Received,
        translate: &Translator,
    ) -> Result<ReceiveOutcome, AppError> {
        let not_found = || AppError::IntegrationNotFound(id.chars().take(80).collect());
        let parsed = IntegrationId::parse(id).ok_or_else(not_found)?;
        let integration = self
            .ports
            .integrations
            .integration_by_id(parsed)
            .await?
            .ok_or_else(not_found)?;
        let now = self.ports.clock.now();
        let outcome = self
            .receive_authentic(&integration, &received, now, translate)
            .await;
        let (verdict, reason) = match &outcome {
            Ok(outcome) => (outcome.verdict, outcome.reason.clone()),
            Err(error) => (Verdict::Rejected, error.to_string()),
        };
        if verdict == Verdict::Rejected && !self.refusal_logged(integration.id, now) {
            return outcome;
        }
        let entry = ReceivedDelivery {
            id: ReceivedId::from_uuid(self.ports.ids.uuid()),
            integration: integration.id,
            workspace: integration.workspace,
            received_at: now,
            event: received
                .event
                .clone()
                .or_else(|| outcome.as_ref().ok().and_then(|o| o.event.clone()))
                .map(|e| e.chars().take(100).collect()),
            delivery: received
                .delivery
                .clone()
                .or_else(|| outcome.as_ref().ok().and_then(|o| o.delivery.clone()))
                .map(|d| d.chars().take(100).collect()),
            verdict,
            reason: reason.chars().take(1000).collect(),
        };
        self.ports
            .integrations
            .record_received(entry, DELIVERIES_KEPT)
            .await?;
        outcome
    }

    async fn receive_authentic(
        &self,
        integration: &IntegrationRecord,
        received: &Received,
        now: Timestamp,
        translate: &Translator,
    ) -> Result<ReceiveOutcome, AppError> {
        use crate::error::AuthFailure;
        let previous = integration
            .previous_secret
            .as_ref()
            .filter(|_| integration.previous_until.is_some_and(|until| now < until));
        let secrets = || std::iter::once(&integration.secret).chain(previous);
        // GitHub and PagerDuty sign the body with the secret; GitLab, Jenkins' Notification
        // plugin, Argo CD's notifications and Opsgenie cannot sign: they send the secret itself
        // (X-Gitlab-Token; X-Shiplog-Token or the URL's `token`), compared in constant time.
        let presented = match integration.provider {
            IntegrationProvider::Github | IntegrationProvider::Pagerduty => {
                received.signature.as_deref()
            }
            IntegrationProvider::Gitlab
            | IntegrationProvider::Jenkins
            | IntegrationProvider::Argocd
            | IntegrationProvider::Opsgenie => received.token.as_deref(),
        };
        let Some(presented) = presented else {
            return Err(AppError::Unauthenticated(
                AuthFailure::MissingIntegrationSecret,
            ));
        };
        let signatures = &self.ports.signatures;
        let authentic = secrets().any(|secret| match integration.provider {
            IntegrationProvider::Github => signatures
                .verify_hub_signature(secret, &received.body, presented)
                .is_ok(),
            IntegrationProvider::Pagerduty => signatures
                .verify_pagerduty_signature(secret, &received.body, presented)
                .is_ok(),
            IntegrationProvider::Gitlab
            | IntegrationProvider::Jenkins
            | IntegrationProvider::Argocd
            | IntegrationProvider::Opsgenie => secret.matches(presented),
        });
        if !authentic {
            return Err(AppError::Unauthenticated(
                AuthFailure::IntegrationSecretMismatch,
            ));
        }
        match translate(
            integration.provider,
            &integration.settings,
            received.event.as_deref(),
            &received.body,
        ) {
            Translation::Acknowledge(reason) => Ok(ReceiveOutcome {
                verdict: Verdict::Accepted,
                reason,
                event: None,
                delivery: None,
            }),
            Translation::Ignore(reason) => Ok(ReceiveOutcome {
                verdict: Verdict::Ignored,
                reason,
                event: None,
                delivery: None,
            }),
            Translation::Malformed(reason) => Err(AppError::invalid("body", reason)),
            Translation::Commits {
                commits,
                request,
                reason,
            } => {
                let count = commits.len();
                let shas: Vec<CommitSha> = commits.iter().map(|(sha, _)| sha.clone()).collect();
                self.ports
                    .deployments
                    .sight_commits(integration.workspace, commits)
                    .await?;
                let mut reason = format!("{reason}: {count} commit times recorded");
                if let Some((key, repo)) = request {
                    // The project is found as the ingest finds it: the integration's, else the
                    // one whose application has the repository.
                    let application =
                        repo.map_or(ApplicationRef::ProjectDefault, ApplicationRef::Repo);
                    match self
                        .resolve_ingest_project(&integration.principal(), None, &application)
                        .await
                    {
                        Ok(project) => {
                            let project = project.id;
                            let linked = self
                                .ports
                                .deployments
                                .link_commit_references(
                                    integration.workspace,
                                    project,
                                    shas,
                                    key.clone(),
                                    now,
                                )
                                .await?;
                            reason.push_str(&format!(
                                "; {key} linked to its commits ({linked} deployments so far)"
                            ));
                        }
                        Err(
                            error @ (AppError::ProjectRequired(_)
                            | AppError::ApplicationAmbiguous { .. }),
                        ) => reason.push_str(&format!("; {key} not linked: {error}")),
                        Err(error) => return Err(error),
                    }
                }
                Ok(ReceiveOutcome {
                    verdict: Verdict::Accepted,
                    reason,
                    event: None,
                    delivery: None,
                })
            }
            Translation::Incident(report) => {
                let transition = report.observation.transition;
                let event = report.event.clone();
                let delivery = report.delivery.clone();
                let (incident, created, notes) =
                    self.record_provider_incident(integration, *report).await?;
                let mut reason = format!(
                    "incident {} ({}) {}: {}",
                    incident.id,
                    incident.external_id,
                    match (created, transition) {
                        (true, _) => "opened",
                        (false, shiplog_domain::incident::Transition::Open) => "updated",
                        (false, shiplog_domain::incident::Transition::Resolve) => "resolved",
                    },
                    if incident.state.is_open() {
                        "open"
                    } else {
                        "resolved"
                    }
                );
                for note in notes {
                    reason.push_str("; ");
                    reason.push_str(&note);
                }
                Ok(ReceiveOutcome {
                    verdict: Verdict::Accepted,
                    reason,
                    event: Some(event),
                    delivery,
                })
            }
            Translation::Ingest(command) => {
                let mut command = *command;
                if let Some(project) = integration.project {
                    command.project = Some(ProjectLookup::Id(project));
                }
                let event = command.event;
                let receipt = self.ingest(&integration.principal(), command).await?;
                let reason = match (receipt.deployment, receipt.status) {
                    (Some(deployment), Some(status)) => format!(
                        "{event}: deployment {deployment} is {}{}",
                        status.as_str(),
                        if receipt.duplicate {
                            " (a repeat: nothing new)"
                        } else {
                            ""
                        }
                    ),
                    _ => format!("{event} recorded"),
                };
                Ok(ReceiveOutcome {
                    verdict: Verdict::Accepted,
                    reason,
                    event: None,
                    delivery: None,
                })
            }
        }
    }

    /// Whether a refused delivery of `integration` at `now` is logged: at most
    /// [`shiplog_domain::integration::REFUSALS_LOGGED_PER_MINUTE`] a minute each (the budgets of past minutes are dropped
    /// when many integrations are counted).
    fn refusal_logged(&self, integration: IntegrationId, now: Timestamp) -> bool {
        let seconds = now.unix_micros().div_euclid(1_000_000);
        let Ok(mut budgets) = self.refusals.lock() else {
            return true;
        };
        if budgets.len() > 10_000 {
            budgets.retain(|_, budget| budget.is_current(seconds));
        }
        budgets.entry(integration).or_default().admit(seconds)
    }

    /// The deliveries an integration received, newest first (at most [`DELIVERIES_KEPT`]).
    pub async fn integration_deliveries(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Vec<ReceivedDelivery>, AppError> {
        caller.require(Capability::Read, "read integrations")?;
        let record = self.visible_integration(caller, id).await?;
        Ok(self
            .ports
            .integrations
            .received(caller.workspace, record.id, DELIVERIES_KEPT)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::error::ErrorCode;
    use crate::testing::{TestPorts, admin, now, project, reader};

    fn request(provider: &str) -> NewIntegration {
        NewIntegration {
            provider: provider.into(),
            name: "GitHub".into(),
            project: Some(project().slug),
            settings: None,
        }
    }

    /// Ports whose integration store keeps what it is given.
    fn keeping() -> (TestPorts, Arc<Mutex<Vec<IntegrationRecord>>>) {
        let mut ports = TestPorts::new();
        ports.with_project();
        ports.with_clock_and_ids();
        ports.ids.expect_secret_bytes().returning(|| [7u8; 32]);
        let kept = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&kept);
        ports
            .integrations
            .expect_create_integration()
            .returning(move |record| {
                store.lock().unwrap().push(record);
                Ok(())
            });
        let store = Arc::clone(&kept);
        ports
            .integrations
            .expect_integration()
            .returning(move |ws, id| {
                Ok(store
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|r| r.workspace == ws && r.id == id)
                    .cloned())
            });
        let store = Arc::clone(&kept);
        ports
            .integrations
            .expect_update_integration()
            .returning(move |record| {
                let mut kept = store.lock().unwrap();
                let found = kept.iter_mut().find(|r| r.id == record.id);
                let changed = found.is_some();
                if let Some(old) = found {
                    *old = record;
                }
                Ok(changed)
            });
        (ports, kept)
    }

    #[tokio::test]
    async fn the_secret_is_shown_once_and_the_view_never_has_it() {
        let (ports, kept) = keeping();
        let app = ports.app();
        let created = app
            .create_integration(&admin(), request("GitHub"))
            .await
            .unwrap();
        let stored = kept.lock().unwrap()[0].clone();
        assert_eq!(created.secret, stored.secret.reveal());
        assert_eq!(created.integration.provider, IntegrationProvider::Github);
        assert_eq!(created.integration.project, Some(project().slug));
        assert!(
            created
                .integration
                .webhook_url
                .ends_with(&format!("/api/v1/integrations/{}/webhook", stored.id))
        );
        let view = app
            .get_integration(&reader(), &stored.id.to_string())
            .await
            .unwrap();
        let json = serde_json::to_string(&view).unwrap();
        assert!(!json.contains(&created.secret), "{json}");
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_secret_for_the_grace_period() {
        let (ports, kept) = keeping();
        let app = ports.app();
        let created = app
            .create_integration(&admin(), request("gitlab"))
            .await
            .unwrap();
        let id = created.integration.id.to_string();
        let rotated = app
            .rotate_integration_secret(&admin(), &id, None)
            .await
            .unwrap();
        let stored = kept.lock().unwrap()[0].clone();
        assert_eq!(
            stored
                .previous_secret
                .as_ref()
                .map(|s| s.reveal().to_owned()),
            Some(created.secret)
        );
        assert_eq!(stored.secret.reveal(), rotated.secret);
        assert_eq!(
            rotated.integration.previous_secret_valid_until,
            now().checked_add(time::Duration::hours(ROTATION_GRACE_HOURS))
        );
    }

    #[tokio::test]
    async fn a_rotated_out_secret_stops_working_when_its_grace_ends_and_the_refusal_is_logged() {
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        let record = IntegrationRecord {
            id: IntegrationId::from_uuid(crate::testing::ids(77)),
            workspace: crate::testing::workspace(),
            project: None,
            provider: IntegrationProvider::Github,
            name: "GitHub".into(),
            settings: serde_json::json!({}),
            secret: SigningSecret::from_stored("new".into()),
            previous_secret: Some(SigningSecret::from_stored("old".into())),
            // The grace ended a second before now.
            previous_until: now().checked_add(time::Duration::seconds(-1)),
            created_at: now(),
            rotated_at: None,
        };
        let found = record.clone();
        ports
            .integrations
            .expect_integration_by_id()
            .returning(move |_| Ok(Some(found.clone())));
        ports
            .signatures
            .expect_verify_hub_signature()
            .returning(|secret, _, header| {
                if header == format!("signed-with-{}", secret.reveal()) {
                    Ok(())
                } else {
                    Err(crate::ports::SignatureError::Mismatch)
                }
            });
        let logged = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&logged);
        ports
            .integrations
            .expect_record_received()
            .returning(move |entry, keep| {
                assert_eq!(keep, DELIVERIES_KEPT);
                log.lock().unwrap().push(entry);
                Ok(())
            });
        let app = ports.app();
        let translate =
            |_: IntegrationProvider, _: &serde_json::Value, _: Option<&str>, _: &[u8]| {
                Translation::Acknowledge("ping".into())
            };
        let received = |signature: &str| Received {
            event: Some("ping".into()),
            delivery: Some("d".into()),
            signature: Some(signature.into()),
            token: None,
            body: b"{}".to_vec(),
        };
        let id = record.id.to_string();
        let error = app
            .receive_integration(&id, received("signed-with-old"), &translate)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidSignature);
        let accepted = app
            .receive_integration(&id, received("signed-with-new"), &translate)
            .await
            .unwrap();
        assert_eq!(accepted.verdict, Verdict::Accepted);
        let verdicts: Vec<Verdict> = logged.lock().unwrap().iter().map(|e| e.verdict).collect();
        assert_eq!(verdicts, [Verdict::Rejected, Verdict::Accepted]);
    }

    #[tokio::test]
    async fn bad_input_and_roles_are_refused_naming_the_field() {
        let (ports, _) = keeping();
        let app = ports.app();
        let error = app
            .create_integration(&admin(), request("bitbucket"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidField);
        assert!(error.to_string().starts_with("provider:"), "{error}");
        let mut blank = request("github");
        blank.name = "  ".into();
        let error = app.create_integration(&admin(), blank).await.unwrap_err();
        assert!(error.to_string().starts_with("name:"), "{error}");
        let mut list = request("github");
        list.settings = Some(serde_json::json!([1, 2]));
        let error = app.create_integration(&admin(), list).await.unwrap_err();
        assert!(error.to_string().starts_with("settings:"), "{error}");
        let error = app
            .create_integration(&reader(), request("github"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::RoleForbidden);
        let error = app
            .get_integration(&reader(), "not-an-id")
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::IntegrationNotFound);
    }
}
