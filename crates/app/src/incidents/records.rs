//! The incident record, what the API and providers send about one, and the pure rules that
//! fold those updates into it ([`merge`], [`patched`]): the store applies them inside its
//! write transaction.

use serde::Serialize;
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug};
use shiplog_domain::incident::{IncidentSource, IncidentState, Observation, settle};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::timestamp::Timestamp;

use crate::ids::{
    ApplicationId, DeploymentId, EnvironmentId, IncidentId, IntegrationId, ProjectId, WorkspaceId,
};

/// The longest title kept (longer ones are cut, not refused, when a provider sends them).
pub const MAX_TITLE: usize = 300;
/// The longest severity word.
pub const MAX_SEVERITY: usize = 40;
/// The longest source id.
pub const MAX_EXTERNAL_ID: usize = 200;
/// The longest link.
pub const MAX_URL: usize = 2000;

/// An application or environment an incident is about: its id and its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<I, C> {
    /// Its id.
    pub id: I,
    /// Its code.
    pub code: C,
}

/// What an incident names as its cause; all empty: nothing (DORA then links it to the last
/// successful deployment of its place shortly before it opened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentBlame {
    /// A deployment.
    pub deployment: Option<DeploymentId>,
    /// A commit: the deployments that carry it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub commit: Option<CommitSha>,
    /// A reference (`PR-123`): the deployments that carry it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reference: Option<ReferenceKey>,
}

impl IncidentBlame {
    /// Whether it names nothing.
    pub fn is_empty(&self) -> bool {
        self.deployment.is_none() && self.commit.is_none() && self.reference.is_none()
    }
}

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its project.
    pub project: Named<ProjectId, ProjectSlug>,
    /// Its application; `None`: the whole project.
    pub application: Option<Named<ApplicationId, ApplicationCode>>,
    /// Its environment; `None`: any production environment.
    pub environment: Option<Named<EnvironmentId, EnvironmentCode>>,
    /// What broke.
    pub title: String,
    /// The source's severity or priority word (`P1`, `high`…).
    pub severity: Option<String>,
    /// Where the source shows it.
    pub url: Option<String>,
    /// Who reported it.
    pub source: IncidentSource,
    /// The source's id for it: one incident per project, source and id.
    pub external_id: String,
    /// The integration it came through, if any.
    pub integration: Option<IntegrationId>,
    /// Opened, resolved.
    pub state: IncidentState,
    /// What it names as its cause.
    pub blame: IncidentBlame,
    /// When shiplog first heard of it.
    pub created_at: Timestamp,
    /// When shiplog last changed it.
    pub updated_at: Timestamp,
}

/// One update from a source: the incident as it would be stored if it were new, and what the
/// update says about its state. See [`merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentUpdate {
    /// The incident if none with its source and external id exists yet.
    pub incident: Incident,
    /// What this update says.
    pub observation: Observation,
}

/// Folds an update into the stored incident of its source and external id, if any. The
/// domain's [`settle`] decides the state; the text fields follow the update that decides it;
/// a cause once named is kept unless an update names another; the place is kept once known.
pub fn merge(current: Option<Incident>, update: IncidentUpdate) -> Incident {
    let IncidentUpdate {
        incident: fresh,
        observation,
    } = update;
    let Some(mut current) = current else {
        let mut fresh = fresh;
        fresh.state = settle(None, observation);
        return fresh;
    };
    let newer = observation.occurred_at >= current.state.changed_at;
    current.state = settle(Some(current.state), observation);
    if newer {
        current.title = fresh.title;
        if fresh.severity.is_some() {
            current.severity = fresh.severity;
        }
        if fresh.url.is_some() {
            current.url = fresh.url;
        }
    }
    if current.application.is_none() {
        current.application = fresh.application;
    }
    if current.environment.is_none() {
        current.environment = fresh.environment;
    }
    if !fresh.blame.is_empty() {
        current.blame = fresh.blame;
    }
    current.updated_at = fresh.updated_at;
    current
}

/// A change asked for with `PATCH /api/v1/incidents/{id}`; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentPatch {
    /// A new title.
    pub title: Option<String>,
    /// A new severity (`Some(None)` clears it).
    pub severity: Option<Option<String>>,
    /// `Some(Some(at))` resolves it at `at`; `Some(None)` reopens it.
    pub resolved: Option<Option<Timestamp>>,
    /// A new cause (replaces the old one; all empty clears it).
    pub blame: Option<IncidentBlame>,
}

/// Applies a patch at `now`. A resolution before the opening is taken at the opening.
pub fn patched(mut current: Incident, patch: IncidentPatch, now: Timestamp) -> Incident {
    if let Some(title) = patch.title {
        current.title = title;
    }
    if let Some(severity) = patch.severity {
        current.severity = severity;
    }
    if let Some(resolved) = patch.resolved {
        current.state.resolved_at = resolved.map(|at| at.max(current.state.opened_at));
        current.state.changed_at = current.state.changed_at.max(now);
    }
    if let Some(blame) = patch.blame {
        current.blame = blame;
    }
    current.updated_at = now;
    current
}

/// A change asked for with `PATCH /api/v1/incidents/{id}`, before it is checked against the
/// incident: `status` `resolved` resolves it (at `resolved_at`, default now), `open` reopens
/// it; `resolved_at` alone resolves it then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentChange {
    /// A new title.
    pub title: Option<String>,
    /// A new severity (`Some(None)` clears it).
    pub severity: Option<Option<String>>,
    /// Open or resolved.
    pub status: Option<IncidentStatus>,
    /// When it was resolved.
    pub resolved_at: Option<Timestamp>,
    /// A new cause (replaces the old one; all empty clears it).
    pub blame: Option<IncidentBlame>,
}

/// Whether an incident is open or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentStatus {
    /// Not resolved.
    Open,
    /// Resolved.
    Resolved,
}

/// An incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentView {
    /// Its id.
    pub id: IncidentId,
    /// Its project's slug.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub project: ProjectSlug,
    /// Its application's code; `null`: the whole project.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub application: Option<ApplicationCode>,
    /// Its environment's code; `null`: any production environment.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub environment: Option<EnvironmentCode>,
    /// What broke.
    pub title: String,
    /// The source's severity or priority word.
    pub severity: Option<String>,
    /// Where the source shows it.
    pub url: Option<String>,
    /// Who reported it.
    pub source: IncidentSource,
    /// The source's id for it.
    pub external_id: String,
    /// The integration it came through.
    pub integration: Option<IntegrationId>,
    /// Open or resolved.
    pub status: IncidentStatus,
    /// When it opened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub opened_at: Timestamp,
    /// When it was resolved.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub resolved_at: Option<Timestamp>,
    /// Opening to resolution, when resolved (the recovery time DORA counts).
    pub recovery_seconds: Option<f64>,
    /// What it names as its cause.
    pub blamed: IncidentBlame,
    /// When shiplog first heard of it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When shiplog last changed it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl From<Incident> for IncidentView {
    fn from(incident: Incident) -> Self {
        let state = incident.state;
        Self {
            id: incident.id,
            project: incident.project.code,
            application: incident.application.map(|a| a.code),
            environment: incident.environment.map(|e| e.code),
            title: incident.title,
            severity: incident.severity,
            url: incident.url,
            source: incident.source,
            external_id: incident.external_id,
            integration: incident.integration,
            status: if state.is_open() {
                IncidentStatus::Open
            } else {
                IncidentStatus::Resolved
            },
            opened_at: state.opened_at,
            resolved_at: state.resolved_at,
            recovery_seconds: state
                .resolved_at
                .map(|at| (at.unix_micros() - state.opened_at.unix_micros()) as f64 / 1_000_000.0),
            blamed: incident.blame,
            created_at: incident.created_at,
            updated_at: incident.updated_at,
        }
    }
}

/// `POST /api/v1/incidents`, as parsed by the HTTP adapter (texts not yet validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewIncident {
    /// The project (required unless the key is limited to one).
    pub project: Option<ProjectSlug>,
    /// Its application (code).
    pub application: Option<ApplicationCode>,
    /// Its environment (code).
    pub environment: Option<EnvironmentCode>,
    /// What broke.
    pub title: String,
    /// Severity.
    pub severity: Option<String>,
    /// Link.
    pub url: Option<String>,
    /// The sender's id for it; with it, repeated requests update one incident.
    pub external_id: Option<String>,
    /// When it opened; default now.
    pub opened_at: Option<Timestamp>,
    /// When it was resolved, if it is.
    pub resolved_at: Option<Timestamp>,
    /// What caused it.
    pub blame: IncidentBlame,
}

/// What a provider's delivery says about an incident (read by the HTTP adapter's providers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIncident {
    /// The provider's name for what happened (`incident.resolved`, `Close`), for the log.
    pub event: String,
    /// The provider's id of this delivery, when only the body carries it (PagerDuty's
    /// `event.id`), for the log.
    pub delivery: Option<String>,
    /// The provider's id for it.
    pub external_id: String,
    /// What broke.
    pub title: String,
    /// Severity or priority.
    pub severity: Option<String>,
    /// Where the provider shows it.
    pub url: Option<String>,
    /// Its application's code, when the integration's settings map it.
    pub application: Option<ApplicationCode>,
    /// Its environment's code, when the integration's settings name one.
    pub environment: Option<EnvironmentCode>,
    /// What the delivery says happened.
    pub observation: Observation,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only this project.
    pub project: Option<ProjectSlug>,
    /// Only open or only resolved ones.
    pub status: Option<IncidentStatus>,
    /// Page size; default 50, at most 200.
    pub limit: Option<u32>,
    /// Continue after this incident (a page's `next_cursor`).
    pub cursor: Option<String>,
}

/// The store's side of [`IncidentFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentQuery {
    /// Only this project.
    pub project: Option<ProjectId>,
    /// Only open or only resolved ones.
    pub status: Option<IncidentStatus>,
    /// Page size.
    pub limit: u32,
    /// Continue after this incident.
    pub after: Option<IncidentId>,
}

/// A page of incidents, newest opening first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentPage {
    /// The incidents.
    pub items: Vec<IncidentView>,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
}
