//! The records use cases read and write through the ports.

use serde::{Deserialize, Serialize};
use shiplog_domain::dora::{DEFAULT_HOTFIX_PATTERNS, ReworkReason};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{
    ApplicationCode, CommitSha, EnvironmentCode, Fingerprint, IdempotencyKey, ProjectSlug,
    TeamCode, WorkspaceCode,
};
use shiplog_domain::key::{KeyHash, Role, SigningKeyId, SigningSecret};
use shiplog_domain::reference::{Reference, ReferenceKey};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{DeploymentStatus, Provider};
use shiplog_domain::timestamp::Timestamp;

use crate::ids::{
    ApiKeyId, ApplicationId, DeploymentId, EnvironmentId, EventId, ProjectId, SigningKeyRecordId,
    TeamId, WorkspaceId,
};

/// A tenant. Nothing crosses workspaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its id.
    pub id: WorkspaceId,
    /// Its code (Envtracker's `companyCode`).
    pub code: WorkspaceCode,
    /// Display name.
    pub name: String,
    /// The most environments its projects may hold together; `None` for no limit.
    pub environment_limit: Option<u32>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A product or system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its slug, unique in the workspace.
    pub slug: ProjectSlug,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The branch and ref patterns of its hotfixes, if it set its own (`*` matches any run of
    /// characters); `None`: [`DEFAULT_HOTFIX_PATTERNS`].
    pub hotfix_patterns: Option<Vec<String>>,
}

impl Project {
    /// The hotfix patterns in force: its own, else the defaults.
    pub fn hotfix_patterns(&self) -> Vec<String> {
        self.hotfix_patterns.clone().unwrap_or_else(|| {
            DEFAULT_HOTFIX_PATTERNS
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        })
    }
}

/// How a request names a project: Clienwork's `project_id` may be an id or a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectLookup {
    /// By id.
    Id(ProjectId),
    /// By slug.
    Slug(ProjectSlug),
}

impl ProjectLookup {
    /// Reads an id-or-slug value: a UUID is an id, anything else must be a valid slug.
    pub fn parse(value: &str) -> Result<Self, shiplog_domain::ids::InvalidCode> {
        match ProjectId::parse(value) {
            Some(id) => Ok(Self::Id(id)),
            None => ProjectSlug::parse(value).map(Self::Slug),
        }
    }
}

/// A team that owns environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its code, unique in the workspace.
    pub code: TeamCode,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A deployable unit, usually one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Its id (also its pipeline id for Devopness-style hook paths).
    pub id: ApplicationId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its project.
    pub project: ProjectId,
    /// Its code, unique in the project.
    pub code: ApplicationCode,
    /// Display name.
    pub name: String,
    /// Its repository, when known.
    pub repo: Option<RepoIdentity>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The provider (`github`, `gitlab`, …) of the credential stored for it with
    /// `PUT /api/v1/applications/{id}/source-provider`, if any. The token itself is never part
    /// of this record.
    pub source_provider: Option<String>,
}

/// Where deployments go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Its id.
    pub id: EnvironmentId,
    /// Its workspace, which owns it: projects' applications are assigned or deployed to it.
    pub workspace: WorkspaceId,
    /// Its code, unique in the workspace.
    pub code: EnvironmentCode,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub kind: EnvironmentKind,
    /// Where it can be visited.
    pub url: Option<String>,
    /// Display order (ascending).
    pub position: i32,
    /// The team that owns it.
    pub team: Option<TeamId>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The descriptive fields of a deployment, all optional: events fill them in as they arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentFields {
    /// The provider's own id for the deployment or run (Hivel `deployment_id`, a pipeline number).
    pub external_id: Option<String>,
    /// The commit deployed.
    pub commit_sha: Option<CommitSha>,
    /// Its message.
    pub commit_message: Option<String>,
    /// When it was committed, if the pipeline said.
    pub commit_timestamp: Option<Timestamp>,
    /// The Git ref (`refs/heads/main`); `ref` on the wire.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The branch (`main`).
    pub branch: Option<String>,
    /// The CI run's page.
    pub run_url: Option<String>,
    /// Who triggered it.
    pub deployed_by: Option<String>,
    /// The CI build number.
    pub build_number: Option<String>,
    /// The artefact deployed (`company/api-service:v1.2.3`).
    pub image: Option<String>,
    /// Where its logs are.
    pub logs_url: Option<String>,
}

impl DeploymentFields {
    /// Fills every field `self` lacks from `older`: later events add detail, never erase it.
    pub fn or(self, older: &Self) -> Self {
        let pick = |new: Option<String>, old: &Option<String>| new.or_else(|| old.clone());
        Self {
            external_id: pick(self.external_id, &older.external_id),
            commit_sha: self.commit_sha.or_else(|| older.commit_sha.clone()),
            commit_message: pick(self.commit_message, &older.commit_message),
            commit_timestamp: self.commit_timestamp.or(older.commit_timestamp),
            git_ref: pick(self.git_ref, &older.git_ref),
            branch: pick(self.branch, &older.branch),
            run_url: pick(self.run_url, &older.run_url),
            deployed_by: pick(self.deployed_by, &older.deployed_by),
            build_number: pick(self.build_number, &older.build_number),
            image: pick(self.image, &older.image),
            logs_url: pick(self.logs_url, &older.logs_url),
        }
    }
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployment {
    /// Its id.
    pub id: DeploymentId,
    /// Its project's slug.
    pub project: ProjectSlug,
    /// Its application's code.
    pub application: ApplicationCode,
    /// Its application's id, which is also the Devopness pipeline id of its hooks
    /// (`/pipelines/{pipeline_id}/hooks`).
    pub application_id: ApplicationId,
    /// Its environment's code.
    pub environment: EnvironmentCode,
    /// Its environment's kind.
    pub environment_kind: EnvironmentKind,
    /// The normalized status.
    pub status: DeploymentStatus,
    /// Who reported the current status.
    pub provider: Provider,
    /// The provider's word for the current status.
    pub provider_status: String,
    /// What makes two requests the same deployment.
    pub idempotency_key: IdempotencyKey,
    /// Descriptive fields.
    #[serde(flatten)]
    pub fields: DeploymentFields,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// When shiplog first heard of it.
    pub created_at: Timestamp,
    /// When shiplog last changed it.
    pub updated_at: Timestamp,
    /// Change requests named by its commit or sent with it.
    pub references: Vec<Reference>,
    /// Why it is rework by what it says of itself (its sender's mark, a hotfix branch or ref, a
    /// revert), decided when its events arrived; `None`: it says nothing of the kind. (The DORA
    /// report also counts a deployment started during an open incident or failure.)
    pub rework: Option<ReworkReason>,
}

/// A deployment as one reads it alone (`GET /api/v1/deployments/{id}`, its dashboard page):
/// the record, how long it took, its lead time, its commit's address and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentCard {
    /// The deployment, every field as listings show it.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// From its start to its finish, in whole seconds; `null` until both are known.
    pub duration_seconds: Option<i64>,
    /// For a successful deployment, its lead time for changes in whole seconds (from its
    /// commit's time, else the commit's first sighting in another event, to its finish, as
    /// the DORA figures count it); `null` when it failed, is not finished or that start is
    /// unknown.
    pub lead_time_seconds: Option<i64>,
    /// Its commit's page at the forge (GitHub, GitLab or Bitbucket, told from its
    /// application's repository); `null` when the repository or forge is unknown.
    pub commit_url: Option<String>,
    /// What it changed since the previous successful deployment of its application to its
    /// environment.
    pub changes: Changes,
}

/// What a deployment changed since the previous successful deployment of its application to
/// its environment. Commits are ordered by when shiplog first saw them (shiplog does not read
/// repositories): the change holds the commits first seen after the previous deployment's
/// commit, up to its own, that an event of its application names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Changes {
    /// `first` (no earlier success: its own commit is listed), `forward`, `redeploy` (the same
    /// commit), `rollback` (an older commit: `commits` are those it takes away) or `unknown`
    /// (a commit is missing on either side).
    pub kind: shiplog_domain::changes::ChangeKind,
    /// The deployment the change is measured from; `null` for the first.
    pub since: Option<ChangedFrom>,
    /// The commits, oldest sighting first, at most 100.
    pub commits: Vec<ChangedCommit>,
    /// Whether more commits than listed are part of the change.
    pub commits_truncated: bool,
    /// The change requests of those commits (named by their deployments or merged requests
    /// that carry them), in key order.
    pub change_requests: Vec<ReferenceKey>,
    /// Who ran the deployments of those commits (`deployed_by`), each once.
    pub triggered_by: Vec<String>,
    /// The forge's page comparing the two commits (older first); `null` when there is no
    /// range or the forge is unknown.
    pub compare_url: Option<String>,
}

/// The deployment a change is measured from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangedFrom {
    /// Its id.
    pub id: DeploymentId,
    /// Its commit; `null` when it named none.
    pub commit_sha: Option<CommitSha>,
    /// When it finished (else started).
    pub deployed_at: Timestamp,
}

/// One commit of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangedCommit {
    /// The commit.
    pub sha: CommitSha,
    /// When shiplog first saw it (an event or a push); `null` if never.
    pub first_seen_at: Option<Timestamp>,
    /// Its page at the forge; `null` when the forge is unknown.
    pub url: Option<String>,
}

/// A pipeline event as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineEventRecord {
    /// Its id.
    pub id: EventId,
    /// Its project.
    pub project: ProjectId,
    /// Its application.
    pub application: ApplicationId,
    /// The deployment it touched, for deploy events.
    pub deployment: Option<DeploymentId>,
    /// Which event.
    pub event: PipelineEvent,
    /// Who sent it.
    pub provider: Provider,
    /// The provider's status word, if any.
    pub provider_status: Option<String>,
    /// The normalized status.
    pub status: DeploymentStatus,
    /// The commit it is about.
    pub commit_sha: Option<CommitSha>,
    /// When it happened, by the provider's account.
    pub occurred_at: Timestamp,
    /// When shiplog received it.
    pub received_at: Timestamp,
    /// Its content hash (duplicates share it).
    pub fingerprint: Fingerprint,
}

/// An API key as stored: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// A label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The one project it is limited to, if any.
    pub project: Option<ProjectId>,
    /// SHA-256 of the secret.
    pub hash: KeyHash,
    /// The secret's first characters, for listings.
    pub hint: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was last used (to the minute: written at most once a minute).
    pub last_used_at: Option<Timestamp>,
}

/// A dashboard session, as stored: opened with an API key, which it acts as until it expires,
/// is signed out, or the key is revoked; or by a person through the OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of its secret.
    pub hash: KeyHash,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Whom it acts for.
    pub holder: SessionHolder,
    /// The address it was opened from, when known.
    pub address: Option<String>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// Whom a session acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionHolder {
    /// The API key it was opened with: its role and project, checked on every request.
    Key(ApiKeyId),
    /// A person, with the role their groups gave at the last look and when to look again.
    Person {
        /// The person.
        id: crate::ids::PersonId,
        /// Their role in the session's workspace.
        role: Role,
        /// When their groups are looked at again (the session is not used after this until
        /// they are).
        refresh_at: Timestamp,
    },
}

/// What a session grants now: its key's workspace, role, project and expiry (or its
/// person's role), and its own end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The key's role, or the person's.
    pub role: Role,
    /// The key's project, if it is limited to one.
    pub project: Option<ProjectId>,
    /// When the key expires, if ever.
    pub key_expires_at: Option<Timestamp>,
    /// When the session ends.
    pub expires_at: Timestamp,
    /// Who acts: the key (`Actor::ApiKey`) or the person (`Actor::Person`).
    pub actor: crate::audit::Actor,
    /// For a person's session, when their groups are looked at again.
    pub refresh_at: Option<Timestamp>,
}

/// Whose sessions: one API key's or one person's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOwner {
    /// The sessions opened with this key.
    Key(ApiKeyId),
    /// This person's sessions.
    Person(crate::ids::PersonId),
}

/// A live session, as the sessions page lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Its secret's hash: names it without opening it.
    pub hash: KeyHash,
    /// Whom it acts for: its key or person.
    pub actor: crate::audit::Actor,
    /// The person's email, when it is a person's.
    pub email: Option<String>,
    /// Its role now (a person's as of the last look at their groups).
    pub role: Role,
    /// The address it was opened from, when known.
    pub address: Option<String>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// A person, as recorded at their first sign-in and updated at each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    /// Their id in shiplog.
    pub id: crate::ids::PersonId,
    /// The provider's issuer URL.
    pub issuer: String,
    /// Their subject at that issuer (stable, unlike their name or email).
    pub subject: String,
    /// Their name, as the provider last gave it (else their email or subject).
    pub name: String,
    /// Their email, as the provider last gave it.
    pub email: Option<String>,
    /// When they first signed in.
    pub created_at: Timestamp,
    /// When they last signed in.
    pub signed_in_at: Timestamp,
}

/// A signing key for the Envtracker-style endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Its record id.
    pub id: SigningKeyRecordId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// The public id sent in `X-Webhook-Key`.
    pub key_id: SigningKeyId,
    /// A label.
    pub name: String,
    /// The HMAC secret.
    pub secret: SigningSecret,
    /// What requests signed with it may do.
    pub role: Role,
    /// The one project it is limited to, if any.
    pub project: Option<ProjectId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was last used (to the minute: written at most once a minute).
    pub last_used_at: Option<Timestamp>,
}

/// Whether a change request has reached its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReferenceStatus {
    /// Named by deployments, none of which closed it successfully yet.
    Open,
    /// A successful deployment carried it with a closing keyword.
    Deployed,
}

impl ReferenceStatus {
    /// The stored and shown word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Deployed => "deployed",
        }
    }

    /// Reads a stored word.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Open, Self::Deployed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A change request and the deployments that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferenceView {
    /// Its key.
    pub key: ReferenceKey,
    /// Open or deployed.
    pub status: ReferenceStatus,
    /// When it was first deployed, if it was.
    pub deployed_at: Option<Timestamp>,
    /// Where it was first deployed, if it was.
    pub deployed_to: Option<EnvironmentCode>,
    /// Every deployment that carried it, newest first.
    pub deployments: Vec<Deployment>,
}

impl ReferenceView {
    /// Each environment the change reached: its first successful deployment there (by finish,
    /// else last change), in environment-code order.
    pub fn reached(&self) -> Vec<(&EnvironmentCode, &Deployment)> {
        let at = |d: &Deployment| d.finished_at.unwrap_or(d.updated_at);
        let mut first: std::collections::BTreeMap<&EnvironmentCode, &Deployment> =
            std::collections::BTreeMap::new();
        for deployment in self
            .deployments
            .iter()
            .filter(|d| d.status == DeploymentStatus::Success)
        {
            first
                .entry(&deployment.environment)
                .and_modify(|kept| {
                    if at(deployment) < at(kept) {
                        *kept = deployment;
                    }
                })
                .or_insert(deployment);
        }
        first.into_iter().collect()
    }
}

/// One application's place on one environment, as the store reads it for the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEntry {
    /// The environment.
    pub environment: EnvironmentCode,
    /// The application.
    pub application: ApplicationCode,
    /// Whether the application is assigned to the environment.
    pub assigned: bool,
    /// The last successful deployment of the application there (by deployment time).
    pub current: Option<Deployment>,
    /// When the newest pending or running deployment there started (by deployment time).
    pub latest_in_progress_at: Option<Timestamp>,
}

/// An application on the environments board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardApplication {
    /// Its code.
    pub application: ApplicationCode,
    /// Whether it is assigned to the environment (else it only has deployments there).
    pub assigned: bool,
    /// Whether a deployment newer than the current version is pending or running.
    pub in_progress: bool,
    /// The current version: the last successful deployment; `null` when none succeeded yet.
    pub current: Option<Deployment>,
}

/// One environment on the board, with every application assigned or deployed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardEnvironment {
    /// Its code.
    pub code: EnvironmentCode,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub kind: EnvironmentKind,
    /// Where it can be visited.
    pub url: Option<String>,
    /// Display order (ascending).
    pub position: i32,
    /// Its applications, by code.
    pub applications: Vec<BoardApplication>,
}

impl BoardApplication {
    /// The board's view of a store entry: a deployment is in progress when a pending or running
    /// one is at least as new as the current version (older abandoned runs don't count).
    pub fn from_entry(entry: BoardEntry) -> Self {
        let current_at = entry.current.as_ref().map(Deployment::deployed_at);
        let in_progress = match (entry.latest_in_progress_at, current_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(running), Some(current)) => running >= current,
        };
        Self {
            application: entry.application,
            assigned: entry.assigned,
            in_progress,
            current: entry.current,
        }
    }
}

impl Deployment {
    /// Its time on the timeline: when it finished, else started, else when shiplog heard of it.
    pub fn deployed_at(&self) -> Timestamp {
        self.finished_at
            .or(self.started_at)
            .unwrap_or(self.created_at)
    }

    /// How long it took, in whole seconds: from its start to its finish, when both are known
    /// and in that order.
    pub fn duration_seconds(&self) -> Option<i64> {
        match (self.started_at, self.finished_at) {
            (Some(started), Some(finished)) if finished >= started => {
                Some(finished.since(started).whole_seconds())
            }
            _ => None,
        }
    }
}
