//! The audit log: who changed what, when, from which address.
//!
//! Every administrative change (keys, hooks, integrations, workspaces) and every deletion is
//! recorded as an [`AuditEntry`]. A deletion's entry is written in the deletion's own
//! transaction (the store's `LifecycleStore`); any other change's right after it commits, and
//! a failure to write that entry is logged with the entry itself rather than failing a change
//! that already happened.

use shiplog_domain::timestamp::Timestamp;

use crate::admin::WorkspaceAdmin;
use crate::auth::Principal;
use crate::ids::WorkspaceId;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The instance's master key.
    Master,
    /// An API key, presented or through a dashboard session signed in with it.
    ApiKey {
        /// The key's id.
        id: String,
        /// Its name when it acted.
        name: String,
    },
    /// A person signed in to the dashboard through the OpenID provider.
    Person {
        /// The person's id.
        id: String,
        /// Their name when they acted.
        name: String,
    },
    /// A signing key (the Envtracker-style signed endpoints).
    SigningKey {
        /// The key's record id.
        id: String,
    },
    /// An integration, acting for its provider.
    Integration {
        /// The integration's id.
        id: String,
    },
    /// shiplog itself (retention).
    System {
        /// What part of it.
        name: &'static str,
    },
}

impl Actor {
    /// The parts of shiplog that act as [`Actor::System`].
    pub const SYSTEM: [&'static str; 1] = ["retention"];

    /// The system actor a stored name stands for.
    pub fn system(name: &str) -> Option<Self> {
        Self::SYSTEM
            .into_iter()
            .find(|n| *n == name)
            .map(|name| Self::System { name })
    }

    /// `master`, `api_key`, `person`, `signing_key`, `integration` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::ApiKey { .. } => "api_key",
            Self::Person { .. } => "person",
            Self::SigningKey { .. } => "signing_key",
            Self::Integration { .. } => "integration",
            Self::System { .. } => "system",
        }
    }

    /// The actor's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::ApiKey { id, .. }
            | Self::Person { id, .. }
            | Self::SigningKey { id }
            | Self::Integration { id } => Some(id),
            Self::Master | Self::System { .. } => None,
        }
    }

    /// The actor's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::ApiKey { name, .. } | Self::Person { name, .. } => Some(name),
            Self::System { name } => Some(name),
            _ => None,
        }
    }
}

/// What was done. The names are the API's `action` values, stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AuditAction {
    WorkspaceCreated,
    WorkspaceDeleted,
    ApiKeyCreated,
    ApiKeyRevoked,
    SigningKeyCreated,
    SigningKeyRevoked,
    HookCreated,
    HookReplaced,
    HookEnabled,
    HookDisabled,
    HookDeleted,
    IntegrationCreated,
    IntegrationSecretRotated,
    IntegrationDeleted,
    SessionEnded,
    DeploymentDeleted,
    ApplicationDeleted,
    EnvironmentDeleted,
    ProjectDeleted,
    RetentionPruned,
}

impl AuditAction {
    /// Every action, for documentation and round-trip tests.
    pub const ALL: [Self; 20] = [
        Self::WorkspaceCreated,
        Self::WorkspaceDeleted,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::SigningKeyCreated,
        Self::SigningKeyRevoked,
        Self::HookCreated,
        Self::HookReplaced,
        Self::HookEnabled,
        Self::HookDisabled,
        Self::HookDeleted,
        Self::IntegrationCreated,
        Self::IntegrationSecretRotated,
        Self::IntegrationDeleted,
        Self::SessionEnded,
        Self::DeploymentDeleted,
        Self::ApplicationDeleted,
        Self::EnvironmentDeleted,
        Self::ProjectDeleted,
        Self::RetentionPruned,
    ];

    /// Its name in the API and the database (`hook.deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkspaceCreated => "workspace.created",
            Self::WorkspaceDeleted => "workspace.deleted",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::SigningKeyCreated => "signing_key.created",
            Self::SigningKeyRevoked => "signing_key.revoked",
            Self::HookCreated => "hook.created",
            Self::HookReplaced => "hook.replaced",
            Self::HookEnabled => "hook.enabled",
            Self::HookDisabled => "hook.disabled",
            Self::HookDeleted => "hook.deleted",
            Self::IntegrationCreated => "integration.created",
            Self::IntegrationSecretRotated => "integration.secret_rotated",
            Self::IntegrationDeleted => "integration.deleted",
            Self::SessionEnded => "session.ended",
            Self::DeploymentDeleted => "deployment.deleted",
            Self::ApplicationDeleted => "application.deleted",
            Self::EnvironmentDeleted => "environment.deleted",
            Self::ProjectDeleted => "project.deleted",
            Self::RetentionPruned => "retention.pruned",
        }
    }

    /// The action of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// What a change was made to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget {
    /// `workspace`, `api_key`, `signing_key`, `hook`, `integration`, `session`,
    /// `deployment`, `application`, `environment`, `project` or `retention`.
    pub kind: &'static str,
    /// Its id (or, for retention, the cut-off time).
    pub id: String,
    /// Its name, code or slug when it has one; for retention, what was removed.
    pub name: Option<String>,
}

impl AuditTarget {
    /// Every kind of target, as stored and shown.
    pub const KINDS: [&'static str; 11] = [
        "workspace",
        "api_key",
        "signing_key",
        "hook",
        "integration",
        "session",
        "deployment",
        "application",
        "environment",
        "project",
        "retention",
    ];

    /// The kind a stored name stands for.
    pub fn kind_of(name: &str) -> Option<&'static str> {
        Self::KINDS.into_iter().find(|kind| *kind == name)
    }
}

/// One change, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id.
    pub id: uuid::Uuid,
    /// The workspace changed (`None`: the instance's, e.g. retention).
    pub workspace: Option<WorkspaceId>,
    /// That workspace's code, kept so entries stay readable after it is deleted.
    pub workspace_code: Option<String>,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// To what.
    pub target: AuditTarget,
    /// The client's address as the server saw it (the TCP peer; a proxy's own address behind
    /// one), when the change came over HTTP.
    pub address: Option<String>,
}

/// An entry with its place in the log (newest first when listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its position: larger is newer.
    pub seq: i64,
    /// The entry.
    pub entry: AuditEntry,
}

/// Who is acting and from where, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Who.
    pub actor: Actor,
    /// From which address.
    pub address: Option<String>,
}

impl Principal {
    /// Who this principal is, for the audit log.
    pub fn origin(&self) -> Origin {
        Origin {
            actor: self.actor.clone(),
            address: self.address.clone(),
        }
    }
}

impl WorkspaceAdmin<'_> {
    /// Who is acting, for the audit log.
    pub fn origin(&self) -> Origin {
        match self {
            Self::Master(master) => master.origin(),
            Self::Key(principal) => principal.origin(),
        }
    }
}
