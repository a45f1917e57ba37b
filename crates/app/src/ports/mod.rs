//! Ports: everything the use cases need from the outside world, as traits.
//!
//! Store ports are `async` (they wait on a database); the clock, the id generator and the
//! signature verifier are plain traits because they only compute. A backend that fails
//! answers [`BackendFailure`], which keeps its cause chain for the log and never reaches a
//! client; a port whose calls have other outcomes (a code already taken, a limit reached) has an
//! error enum of those outcomes plus `Backend(BackendFailure)`.
//!
//! With the `mocks` feature (and in this crate's tests) every port has a mockall mock,
//! `MockProjectStore` and so on.

use std::sync::Arc;

use async_trait::async_trait;
use shiplog_domain::ids::{
    ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug, TeamCode, WorkspaceCode,
};
use shiplog_domain::key::{KeyHash, SigningKeyId};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::hooks::{
    AttemptRecord, ClaimedDelivery, Delivery, DeliveryClaim, Hook, HookFilter, SecretText,
};
use crate::ids::{
    ApiKeyId, ApplicationId, DeliveryId, DeploymentId, HookId, IntegrationId, ProjectId,
    SigningKeyRecordId, WorkspaceId,
};
use crate::ingest::{IngestPlan, IngestReceipt};
use crate::integrations::{IntegrationRecord, ReceivedDelivery};
use crate::model::{
    ApiKeyRecord, Application, Deployment, Environment, PersonRecord, PipelineEventRecord, Project,
    ProjectLookup, ReferenceView, SessionGrant, SessionHolder, SessionOwner, SessionRecord,
    SessionSummary, SigningKeyRecord, Team, Workspace,
};
use crate::pagination::Cursor;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

mod runtime;

pub use runtime::{
    ChangeNotifier, Clock, HookSender, IdGenerator, Identity, IdentityError, IdentityProvider,
    Inline, Offload, SignInAttempt, SignInStart, SignatureError, SignatureVerifier, Silent,
    WebhookSigner,
};
#[cfg(any(test, feature = "mocks"))]
pub use runtime::{
    MockClock, MockHookSender, MockIdGenerator, MockIdentityProvider, MockSignatureVerifier,
    MockWebhookSigner,
};

/// A backend that could not do what was asked: the database is down or failed, or refused a
/// value of the request. The cause chain is kept for the log ([`BackendFailure::detail`]);
/// clients are only told which of the two it was.
#[derive(Debug, Clone)]
pub struct BackendFailure {
    refused: bool,
    cause: Arc<dyn std::error::Error + Send + Sync>,
}

impl BackendFailure {
    /// The backend failed or cannot be reached: the caller may retry.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            refused: false,
            cause: Arc::from(cause.into()),
        }
    }

    /// The backend refused a value that passed every check before it (text it cannot hold, a
    /// number out of its range): the request's fault, not an outage.
    pub fn refused(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            refused: true,
            cause: Arc::from(cause.into()),
        }
    }

    /// Whether the backend refused a value rather than failed.
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    /// The cause and every cause under it, for the log (it may quote the refused value).
    pub fn detail(&self) -> String {
        let mut text = self.cause.to_string();
        let mut cause = self.cause.source();
        while let Some(error) = cause {
            // A cause that prints its own cause already (`database error: …`) is said once.
            let said = error.to_string();
            if !text.ends_with(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = error.source();
        }
        text
    }
}

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.refused {
            "the backend refused a value"
        } else {
            "the backend is unavailable"
        })
    }
}

impl std::error::Error for BackendFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// Two failures are equal when they say the same: same kind, same detail.
impl PartialEq for BackendFailure {
    fn eq(&self, other: &Self) -> bool {
        self.refused == other.refused && self.detail() == other.detail()
    }
}

impl Eq for BackendFailure {}

/// Workspaces (tenants).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Creates a workspace.
    async fn create(&self, workspace: Workspace) -> Result<(), WorkspaceStoreError>;
    /// Finds a workspace by code.
    async fn by_code(&self, code: &WorkspaceCode)
    -> Result<Option<Workspace>, WorkspaceStoreError>;
    /// Every workspace, by code.
    async fn list(&self) -> Result<Vec<Workspace>, WorkspaceStoreError>;
}

/// What [`WorkspaceStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceStoreError {
    /// Another workspace has this code.
    #[error("workspace code {0} is already taken")]
    CodeTaken(WorkspaceCode),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// API keys and signing keys.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new API key (its hash only).
    async fn create_api_key(&self, key: ApiKeyRecord) -> Result<(), KeyStoreError>;
    /// Finds the API key whose secret hashes to `hash`.
    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, KeyStoreError>;
    /// Stores a new signing key.
    async fn create_signing_key(&self, key: SigningKeyRecord) -> Result<(), KeyStoreError>;
    /// Finds a signing key by its public id.
    async fn signing_key(
        &self,
        id: &SigningKeyId,
    ) -> Result<Option<SigningKeyRecord>, KeyStoreError>;
    /// Every API key of a workspace, oldest first.
    async fn api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKeyRecord>, KeyStoreError>;
    /// Every signing key of a workspace, oldest first.
    async fn signing_keys(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<SigningKeyRecord>, KeyStoreError>;
    /// Deletes a key of a workspace; `false` when it has no such key.
    async fn delete_key(&self, workspace: WorkspaceId, key: KeyRef) -> Result<bool, KeyStoreError>;
    /// Records that a key (API or signing, by record id) was used at `at`.
    async fn touch_key(&self, key: KeyRef, at: Timestamp) -> Result<(), KeyStoreError>;
    /// The hash of the instance's master key, if one was set.
    async fn master_key_hash(&self) -> Result<Option<KeyHash>, KeyStoreError>;
    /// Sets (or replaces) the hash of the instance's master key, as of `at`.
    async fn set_master_key_hash(&self, hash: KeyHash, at: Timestamp) -> Result<(), KeyStoreError>;
    /// Stores a new dashboard session (its secret's hash only), then ends the oldest sessions
    /// of its API key or person beyond the newest `keep_per_holder`, in the same transaction.
    async fn create_session(
        &self,
        session: SessionRecord,
        keep_per_holder: u32,
    ) -> Result<(), KeyStoreError>;
    /// The session whose secret hashes to `hash`, with what its API key grants now (or its
    /// person's role); `None` when there is none (signed out, or its key was revoked: a key's
    /// sessions end with it).
    async fn session(&self, hash: &KeyHash) -> Result<Option<SessionGrant>, KeyStoreError>;
    /// Gives a person's session the role their groups give now and the next time to look;
    /// `false` when the session is not that person's in that workspace (or is gone).
    async fn refresh_session(
        &self,
        hash: &KeyHash,
        holder: SessionHolder,
        workspace: WorkspaceId,
    ) -> Result<bool, KeyStoreError>;
    /// The live sessions of a workspace (of one key or person when `owner` says so), newest
    /// first.
    async fn sessions(
        &self,
        workspace: WorkspaceId,
        owner: Option<SessionOwner>,
        now: Timestamp,
    ) -> Result<Vec<SessionSummary>, KeyStoreError>;
    /// Ends a session of `workspace`; `false` when it has no such session.
    async fn end_session(
        &self,
        workspace: WorkspaceId,
        hash: &KeyHash,
    ) -> Result<bool, KeyStoreError>;
    /// Records a sign-in of the person `issuer` and `subject` name: created the first time,
    /// name, email and time of sign-in updated after.
    async fn record_person(&self, person: PersonRecord) -> Result<PersonRecord, KeyStoreError>;
    /// Ends a session; `false` when there was none.
    async fn delete_session(&self, hash: &KeyHash) -> Result<bool, KeyStoreError>;
    /// Deletes every session that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, KeyStoreError>;
}

/// One key of either kind, by its record id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// An API key.
    Api(ApiKeyId),
    /// A signing key.
    Signing(SigningKeyRecordId),
}

/// What [`KeyStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// The key's workspace or project does not exist.
    #[error("the key's workspace or project does not exist")]
    OwnerNotFound,
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// Projects.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates a project.
    async fn create(&self, project: Project) -> Result<(), ProjectStoreError>;
    /// Finds a project of `workspace` by id or slug.
    async fn get(
        &self,
        workspace: WorkspaceId,
        lookup: &ProjectLookup,
    ) -> Result<Option<Project>, ProjectStoreError>;
    /// Every project of `workspace`, by slug.
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Project>, ProjectStoreError>;
    /// Sets a project's hotfix patterns (`None`: the defaults).
    async fn set_hotfix_patterns(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        patterns: Option<Vec<String>>,
    ) -> Result<(), ProjectStoreError>;
}

/// What [`ProjectStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectStoreError {
    /// Another project of the workspace has this slug.
    #[error("project slug {0} is already taken in this workspace")]
    SlugTaken(ProjectSlug),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// Teams.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// Creates a team.
    async fn create(&self, team: Team) -> Result<(), TeamStoreError>;
    /// Finds a team of `workspace` by code.
    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &TeamCode,
    ) -> Result<Option<Team>, TeamStoreError>;
    /// Every team of `workspace`, by code.
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Team>, TeamStoreError>;
}

/// What [`TeamStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeamStoreError {
    /// Another team of the workspace has this code.
    #[error("team code {0} is already taken in this workspace")]
    CodeTaken(TeamCode),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// Applications.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    /// Creates an application.
    async fn create(&self, application: Application) -> Result<(), ApplicationStoreError>;
    /// Finds an application of a project by code.
    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        code: &ApplicationCode,
    ) -> Result<Option<Application>, ApplicationStoreError>;
    /// Every application of `workspace` registered for `repo` (in any project).
    async fn by_repo(
        &self,
        workspace: WorkspaceId,
        repo: &RepoIdentity,
    ) -> Result<Vec<Application>, ApplicationStoreError>;
    /// Stores (or replaces) an application's source-provider credential; `false` when the
    /// workspace has no such application.
    async fn set_source_provider(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
        provider: String,
        token: SecretText,
    ) -> Result<bool, ApplicationStoreError>;
    /// Every application of a project, by code.
    async fn list(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<Application>, ApplicationStoreError>;
    /// Finds an application of `workspace` by id (a Devopness pipeline id).
    async fn by_id(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
    ) -> Result<Option<Application>, ApplicationStoreError>;
}

/// What [`ApplicationStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationStoreError {
    /// Another application of the project has this code.
    #[error("application code {0} is already taken in this project")]
    CodeTaken(ApplicationCode),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// One application's environments, for [`EnvironmentStore::assign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentPlan {
    /// The application, created when missing.
    pub application: crate::ingest::ApplicationTarget,
    /// The environments to assign it to; all must exist.
    pub environments: Vec<EnvironmentCode>,
}

/// Environments and the applications assigned to them.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Creates an environment, atomically checking the workspace's `environment_limit`.
    /// A `position` of `None` places it after the workspace's last environment.
    async fn create(
        &self,
        environment: Environment,
        position: Option<i32>,
    ) -> Result<Environment, EnvironmentStoreError>;
    /// Finds an environment of the workspace by code.
    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &EnvironmentCode,
    ) -> Result<Option<Environment>, EnvironmentStoreError>;
    /// Every environment of the workspace, by position then code.
    async fn list(&self, workspace: WorkspaceId)
    -> Result<Vec<Environment>, EnvironmentStoreError>;
    /// Assigns applications to environments, all or nothing; creates missing applications;
    /// returns how many assignments are new (existing ones are kept, not duplicated). `at` dates
    /// the new rows.
    async fn assign(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        plans: Vec<AssignmentPlan>,
        at: Timestamp,
    ) -> Result<usize, EnvironmentStoreError>;
    /// Every application assigned or deployed to an environment of the project, with its last
    /// successful deployment there and its newest in-progress one, by environment position then
    /// application code.
    async fn board(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<crate::model::BoardEntry>, EnvironmentStoreError>;
}

/// What [`EnvironmentStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvironmentStoreError {
    /// The workspace already has an environment with this code.
    #[error("environment code {0} already exists in this workspace")]
    CodeTaken(EnvironmentCode),
    /// The workspace holds as many environments as it may.
    #[error("the workspace already has its limit of {limit} environments")]
    LimitReached {
        /// The limit.
        limit: u32,
    },
    /// An environment named in an assignment does not exist.
    #[error("environment {0} does not exist in this workspace")]
    EnvironmentNotFound(EnvironmentCode),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// Filters and paging for [`DeploymentStore::list`]. Results are newest first (by the order
/// shiplog recorded them), so paging stays stable while new deployments arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentQuery {
    /// Only this project.
    pub project: Option<ProjectId>,
    /// Only this environment code.
    pub environment: Option<EnvironmentCode>,
    /// Only this application code.
    pub application: Option<ApplicationCode>,
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// Only deployments whose time (finish, else start, else creation) is at or after this.
    pub since: Option<Timestamp>,
    /// Only deployments whose time is before this.
    pub until: Option<Timestamp>,
    /// Page size (1 to [`crate::pagination::MAX_LIMIT`]).
    pub limit: u32,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// One page of deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentPage {
    /// The deployments, newest first.
    pub items: Vec<Deployment>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Deployments, and the single atomic write every ingested event becomes.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Applies one ingested event in one transaction, durably committed before it returns:
    /// creates the application and environment if the plan allows, records the pipeline event
    /// (an event whose fingerprint is already stored is a duplicate: nothing is written and the
    /// first receipt is returned), and for deploy events loads the deployment by idempotency key
    /// and writes what [`crate::ingest::decide`] returns.
    async fn ingest(&self, plan: IngestPlan) -> Result<IngestReceipt, DeploymentStoreError>;
    /// Applies many plans as [`DeploymentStore::ingest`] applies one, in their order, in as few
    /// transactions as it can (a history import's batch), each plan's receipt or refusal in its
    /// place: a plan the store refuses is written by no transaction, the others are. Durably
    /// committed before it returns. After an outer error (the database unavailable) some plans
    /// may be committed: applying them again is harmless, ingest being idempotent.
    async fn ingest_many(
        &self,
        plans: Vec<IngestPlan>,
    ) -> Result<Vec<Result<IngestReceipt, DeploymentStoreError>>, DeploymentStoreError>;
    /// How many [`DeploymentStore::ingest_many`] calls are worth running at once: 1 where one
    /// writer applies everything (SQLite), more where transactions run side by side.
    fn concurrent_writes(&self) -> usize {
        1
    }
    /// One deployment of `workspace`.
    async fn get(
        &self,
        workspace: WorkspaceId,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, DeploymentStoreError>;
    /// A page of deployments of `workspace`.
    async fn list(
        &self,
        workspace: WorkspaceId,
        query: DeploymentQuery,
    ) -> Result<DeploymentPage, DeploymentStoreError>;
    /// The finished (successful or failed) deployments the DORA metrics of `query` need: those
    /// of the scope finished in the window, with their commit's earliest known time, plus per
    /// application and environment the last finished one before the window and the first
    /// success after it (so failures crossing the window's edges are measured right), the
    /// successes up to `link_hours` after the window, and the scope's incidents.
    async fn dora(
        &self,
        workspace: WorkspaceId,
        query: DoraQuery,
    ) -> Result<DoraData, DeploymentStoreError>;
    /// Folds commits' own times (from a push) into their sightings, as events of no deployment
    /// at each commit's time, so a deployment of one of them starts its lead time there at the
    /// latest, whichever arrives first; durably committed before it returns.
    async fn sight_commits(
        &self,
        workspace: WorkspaceId,
        commits: Vec<(CommitSha, Timestamp)>,
    ) -> Result<(), DeploymentStoreError>;
    /// Records that a change request (`key`) carries `commits` of `project`: a deployment of
    /// one of them ingested later gets the reference, and the deployments recorded already get
    /// it now (a success among them deploys the request if it is open). Returns how many
    /// deployments it was added to. `at` dates new rows.
    async fn link_commit_references(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commits: Vec<CommitSha>,
        key: ReferenceKey,
        at: Timestamp,
    ) -> Result<usize, DeploymentStoreError>;
    /// What the store knows of the change `deployment` made (see [`ChangesData`]), reading at
    /// most `limit` + 1 commits; `None` if it is not a deployment of `workspace`. One read
    /// transaction, so the parts agree.
    async fn changes(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
        limit: u32,
    ) -> Result<Option<ChangesData>, DeploymentStoreError>;
    /// When each of `commits` was first seen (its sighting), for those ever seen.
    async fn first_seen(
        &self,
        workspace: WorkspaceId,
        commits: Vec<CommitSha>,
    ) -> Result<Vec<(CommitSha, Timestamp)>, DeploymentStoreError>;
    /// For each query, in order: how far each of its `behind` commits is from `ahead` in its
    /// application: the span between their first sightings and, when `behind` is older
    /// (`Forward`), how many commits it lacks (those an event of the application names,
    /// `ahead` included) and their change requests, as [`DeploymentStore::changes`] counts a
    /// change; `None` for an application not of `workspace`. One read transaction.
    async fn lags(
        &self,
        workspace: WorkspaceId,
        queries: Vec<LagQuery>,
    ) -> Result<Vec<Option<Vec<CommitLag>>>, DeploymentStoreError>;
    /// Where the record of pipeline events stands, and which workspaces recorded events after
    /// `after` (a position from an earlier answer), reading at most `limit` events; with
    /// `after` `None`, only the position. The live feeds' one shared change source: every
    /// change of a deployment is recorded with an event.
    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<EventChanges, DeploymentStoreError>;
}

/// What [`DeploymentStore::changes`] reads for one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesData {
    /// Its own commit with its first sighting; `None` when it names no commit.
    pub commit: Option<shiplog_domain::changes::SeenCommit>,
    /// Its stored `commit_seen_at`: when its commit was first seen in another event, the
    /// start of its lead time when no commit timestamp was sent.
    pub commit_seen_at: Option<Timestamp>,
    /// The previous successful deployment of its application to its environment (by the
    /// time deployments are ordered by, finished else started).
    pub previous: Option<PreviousDeployment>,
    /// The span between the two commits ([`shiplog_domain::changes::Span::between`]).
    pub span: shiplog_domain::changes::Span,
    /// The commits first seen in the span's range that its application's pipelines ran (an
    /// event of the application names them) by the later of the range's end and its own time,
    /// oldest sighting first: at most the limit + 1. Empty when the span has no range.
    pub commits: Vec<(CommitSha, Timestamp)>,
    /// The change requests of those commits (named by their deployments, or merged requests
    /// that carry them), in key order; empty when the span has no range.
    pub references: Vec<ReferenceKey>,
    /// Who ran the deployments of those commits (their `deployed_by`), sorted, each once;
    /// empty when the span has no range.
    pub triggered_by: Vec<String>,
}

/// One application's versions to compare ([`DeploymentStore::lags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagQuery {
    /// The application.
    pub application: ApplicationId,
    /// The commits that may lag.
    pub behind: Vec<CommitSha>,
    /// The newest commit.
    pub ahead: CommitSha,
}

/// One answer of [`DeploymentStore::lags`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLag {
    /// `Forward`: `behind` is older, by `commits`; `Rollback`: it is newer; `Redeploy`: the
    /// same commit; `Unknown`: a commit was never seen.
    pub span: shiplog_domain::changes::Span,
    /// The commits `behind` lacks (`ahead` included); 0 unless `Forward`.
    pub commits: u32,
    /// Their change requests, in key order.
    pub change_requests: Vec<ReferenceKey>,
}

/// The deployment a change is measured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousDeployment {
    /// Its id.
    pub id: DeploymentId,
    /// Its commit and first sighting; `None` when it names no commit.
    pub commit: Option<shiplog_domain::changes::SeenCommit>,
    /// When it finished (else started).
    pub deployed_at: Timestamp,
}

/// What [`DeploymentStore::changes_after`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventChanges {
    /// Where to continue from.
    pub position: i64,
    /// The workspaces that recorded events since the position asked for (each once).
    pub workspaces: Vec<WorkspaceId>,
    /// `false` when more than the limit were recorded: the position skipped ahead to the
    /// newest, and any workspace may have changed.
    pub complete: bool,
}

/// The scope of a DORA query. Without `environment`, every `production` environment counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoraQuery {
    /// Only this project.
    pub project: Option<ProjectId>,
    /// Only this environment (by code) instead of every production environment.
    pub environment: Option<EnvironmentCode>,
    /// Only this application (by code).
    pub application: Option<ApplicationCode>,
    /// The window.
    pub window: shiplog_domain::dora::Window,
    /// How long before an incident that names no cause its deployment is looked for (hours):
    /// the store also returns the successful deployments that many hours after the window.
    pub link_hours: u32,
}

/// What the store returns for a DORA query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DoraData {
    /// The environments that were counted, by code.
    pub environments: Vec<EnvironmentCode>,
    /// Their finished deployments (see [`DeploymentStore::dora`]).
    pub records: Vec<shiplog_domain::dora::DeploymentRecord>,
    /// The scope's incidents opened from the window's start on (those of the whole project or
    /// every environment included), with the deployments carrying what each names as its cause.
    pub incidents: Vec<shiplog_domain::dora::IncidentRecord>,
}

/// What [`DeploymentStore`] can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentStoreError {
    /// The idempotency key names a deployment recorded from a different payload.
    #[error("deployment id {0} was already used for a different deployment")]
    Conflict(String),
    /// The plan's application does not exist and may not be created.
    #[error("application {0} does not exist in this project")]
    ApplicationNotFound(ApplicationCode),
    /// The plan's environment does not exist and may not be created.
    #[error("environment {0} does not exist in this workspace")]
    EnvironmentNotFound(EnvironmentCode),
    /// Creating the environment would pass the workspace's limit.
    #[error("the workspace already has its limit of {limit} environments")]
    EnvironmentLimitReached {
        /// The limit.
        limit: u32,
    },
    /// A listing's cursor names no deployment of this workspace.
    #[error("the cursor names no deployment of this workspace")]
    UnknownCursor,
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendFailure),
}

/// Pipeline events, for timelines and commit times.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PipelineEventStore: Send + Sync {
    /// Events recorded for one deployment, oldest first.
    async fn for_deployment(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure>;
    /// The first `limit` events of a project that name `commit`, oldest first: its builds,
    /// tests and deploys everywhere.
    async fn for_commit(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commit: CommitSha,
        limit: u32,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure>;
}

/// Change requests named by deployments.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ReferenceStore: Send + Sync {
    /// A reference of a project, with its deployments; `None` if no deployment named it.
    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        key: &ReferenceKey,
    ) -> Result<Option<ReferenceView>, BackendFailure>;
}

/// Outgoing hooks and their deliveries (the outbox). Delivery rows themselves are written by
/// [`DeploymentStore::ingest`], in the transaction of the status change that raises them.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait HookStore: Send + Sync {
    /// Stores a new hook.
    /// Stores a new hook unless its project already has `max_per_project` hooks (then `false`,
    /// nothing written); concurrent creations in one project are serialized, so the limit holds.
    async fn create_hook(&self, hook: Hook, max_per_project: u32) -> Result<bool, BackendFailure>;
    /// One hook of `workspace`.
    async fn hook(
        &self,
        workspace: WorkspaceId,
        id: HookId,
    ) -> Result<Option<Hook>, BackendFailure>;
    /// The hooks of `workspace` that `filter` selects, oldest first.
    async fn hooks(
        &self,
        workspace: WorkspaceId,
        filter: HookFilter,
    ) -> Result<Vec<Hook>, BackendFailure>;
    /// Replaces a hook (found by workspace and id); `false` when there is none.
    async fn update_hook(&self, hook: Hook) -> Result<bool, BackendFailure>;
    /// Deletes a hook and its deliveries; `false` when there is none.
    async fn delete_hook(&self, workspace: WorkspaceId, id: HookId)
    -> Result<bool, BackendFailure>;
    /// Leases up to `claim.limit` due deliveries of enabled hooks to `claim.owner` until
    /// `claim.lease_until`. A delivery is due when it is pending, its next attempt time has
    /// come, no live lease holds it, and no earlier delivery of the same hook and deployment is
    /// still pending (so one receiver sees one deployment's events in order). No two callers,
    /// in this process or another, get the same delivery while its lease lives.
    async fn claim_deliveries(
        &self,
        claim: DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, BackendFailure>;
    /// Records one attempt and its consequence (delivered, retry at a time, failed; perhaps
    /// disabling the hook), and releases the lease.
    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), BackendFailure>;
    /// The newest `limit` deliveries of a hook, with their attempts.
    async fn deliveries(
        &self,
        workspace: WorkspaceId,
        hook: HookId,
        limit: u32,
    ) -> Result<Vec<Delivery>, BackendFailure>;
    /// The newest `limit` deliveries made for a deployment by any hook, with their attempts.
    async fn deployment_deliveries(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
        limit: u32,
    ) -> Result<Vec<Delivery>, BackendFailure>;
    /// One delivery, with its attempts.
    async fn delivery(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, BackendFailure>;
    /// Makes a delivery pending again, due at `at`, with a fresh retry schedule (its attempts
    /// are kept); `false` when there is none.
    async fn redeliver(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
        at: Timestamp,
    ) -> Result<bool, BackendFailure>;
    /// Stores a finished delivery made outside the outbox (a test send), with its attempts.
    async fn record_test_delivery(
        &self,
        workspace: WorkspaceId,
        delivery: Delivery,
    ) -> Result<(), BackendFailure>;
}

/// Integrations and the deliveries they received.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Stores a new integration.
    async fn create_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<(), BackendFailure>;
    /// One integration of a workspace.
    async fn integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure>;
    /// An integration by id alone, whatever its workspace: what a provider's delivery names.
    async fn integration_by_id(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure>;
    /// Every integration of a workspace, oldest first.
    async fn integrations(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<IntegrationRecord>, BackendFailure>;
    /// Replaces an integration's secrets (after a rotation); `false` when there is none.
    async fn update_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<bool, BackendFailure>;
    /// Deletes an integration and its received deliveries; `false` when there is none.
    async fn delete_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<bool, BackendFailure>;
    /// Records a received delivery, keeping only the newest `keep` of its integration.
    async fn record_received(
        &self,
        received: ReceivedDelivery,
        keep: u32,
    ) -> Result<(), BackendFailure>;
    /// The newest `limit` received deliveries of an integration.
    async fn received(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        limit: u32,
    ) -> Result<Vec<ReceivedDelivery>, BackendFailure>;
}

/// Incidents. Writes fold an update into the stored record inside one transaction (see
/// [`crate::incidents::merge`]), so concurrent updates of one incident never make two records.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Creates the incident of the update's project, source and external id, or folds the update into
    /// it with [`crate::incidents::merge`]; returns the stored incident and whether it is new.
    async fn upsert_incident(
        &self,
        update: crate::incidents::IncidentUpdate,
    ) -> Result<(crate::incidents::Incident, bool), BackendFailure>;
    /// Applies a patch with [`crate::incidents::patched`]; `None` when there is no such
    /// incident.
    async fn patch_incident(
        &self,
        workspace: WorkspaceId,
        id: crate::ids::IncidentId,
        patch: crate::incidents::IncidentPatch,
        at: Timestamp,
    ) -> Result<Option<crate::incidents::Incident>, BackendFailure>;
    /// One incident of a workspace.
    async fn incident(
        &self,
        workspace: WorkspaceId,
        id: crate::ids::IncidentId,
    ) -> Result<Option<crate::incidents::Incident>, BackendFailure>;
    /// Incidents of a workspace, newest opening first (then by id), after `query.after`.
    async fn incidents(
        &self,
        workspace: WorkspaceId,
        query: crate::incidents::IncidentQuery,
    ) -> Result<Vec<crate::incidents::Incident>, BackendFailure>;
}

/// What a deletion removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// One deployment, with its events, references, outbox rows and deliveries.
    Deployment(DeploymentId),
    /// An application with its deployments (as above), assignments and hooks.
    Application(ApplicationId),
    /// An environment with its deployments, assignments, hooks and packed DORA days.
    Environment(crate::ids::EnvironmentId),
    /// A project with everything of it: applications, deployments, change requests, hooks,
    /// integrations, incidents, keys limited to it.
    Project(ProjectId),
    /// A workspace with everything of it.
    Workspace,
}

/// How many rows one retention round removed, table by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Pipeline events (only those of no deployment unless deployments go too).
    pub events: u64,
    /// Hook deliveries with their attempts.
    pub deliveries: u64,
    /// Deployments' status changes (the outbox) whose deliveries are all gone.
    pub status_changes: u64,
    /// Integrations' logs of received deliveries.
    pub received: u64,
    /// Expired dashboard sessions.
    pub sessions: u64,
    /// Audit entries.
    pub audit: u64,
    /// Deployments (only with a deployment retention).
    pub deployments: u64,
}

impl Pruned {
    /// Both rounds' rows added up.
    pub fn plus(self, other: Self) -> Self {
        Self {
            events: self.events + other.events,
            deliveries: self.deliveries + other.deliveries,
            status_changes: self.status_changes + other.status_changes,
            received: self.received + other.received,
            sessions: self.sessions + other.sessions,
            audit: self.audit + other.audit,
            deployments: self.deployments + other.deployments,
        }
    }

    /// Whether a round removed a full batch of some kind (more may be waiting).
    pub fn any_full(&self, batch: u32) -> bool {
        self.counts().into_iter().any(|n| n >= u64::from(batch))
    }

    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.counts().into_iter().sum()
    }

    fn counts(&self) -> [u64; 7] {
        [
            self.events,
            self.deliveries,
            self.status_changes,
            self.received,
            self.sessions,
            self.audit,
            self.deployments,
        ]
    }
}

/// Deletions, retention and the audit log.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Removes what `deletion` names from `workspace` and what belongs to it, and writes
    /// `audit`, in one transaction; packed DORA days it touched are packed again. `false`
    /// (nothing written) when the workspace has no such record.
    async fn delete(
        &self,
        workspace: WorkspaceId,
        deletion: Deletion,
        audit: crate::audit::AuditEntry,
    ) -> Result<bool, BackendFailure>;
    /// Writes one entry.
    async fn record_audit(&self, entry: crate::audit::AuditEntry) -> Result<(), BackendFailure>;
    /// Entries of a workspace (every workspace's and the instance's with `None`), newest
    /// first, older than `before` (a `seq`), at most `limit`.
    async fn audit(
        &self,
        workspace: Option<WorkspaceId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditRecord>, BackendFailure>;
    /// One retention round: removes at most `batch` rows of each kind older than `before`
    /// (deployments older than `deployments_before`, when given), each kind in its own short
    /// transaction.
    async fn prune(
        &self,
        before: Timestamp,
        deployments_before: Option<Timestamp>,
        batch: u32,
    ) -> Result<Pruned, BackendFailure>;
}
