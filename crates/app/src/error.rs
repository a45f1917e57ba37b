//! The one error type of the use cases, and the one table of error codes.
//!
//! Every failure a client can see is an [`AppError`]; its [`ErrorCode`] is stable (clients may
//! match on it) and has an [`ErrorKind`] that adapters translate into their protocol in one place
//! (the HTTP adapter maps kinds to status codes). Messages name the field and the fix.

use shiplog_domain::event::InvalidEvent;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, TeamCode};
use shiplog_domain::key::Role;

use crate::ports::{
    ApplicationStoreError, BackendFailure, DeploymentStoreError, EnvironmentStoreError,
    KeyStoreError, ProjectStoreError, TeamStoreError, WorkspaceStoreError,
};

/// What sort of failure, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule; resending it unchanged will fail again.
    InvalidInput,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials that may not do this.
    Forbidden,
    /// The thing does not exist (or belongs to another workspace or project).
    NotFound,
    /// It clashes with something that exists.
    Conflict,
    /// A configured limit is reached.
    LimitReached,
    /// shiplog's backend failed; retrying later may work.
    Unavailable,
}

macro_rules! error_codes {
    ($($variant:ident => $name:literal, $kind:ident;)*) => {
        /// Stable, machine-readable error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The code as sent to clients.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Its kind.
            pub const fn kind(self) -> ErrorKind {
                match self {
                    $(Self::$variant => ErrorKind::$kind,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidField => "invalid_field", InvalidInput;
    MissingField => "missing_field", InvalidInput;
    InvalidEventType => "invalid_event_type", InvalidInput;
    StartAfterFinish => "start_after_finish", InvalidInput;
    ProjectRequired => "project_required", InvalidInput;
    ApplicationAmbiguous => "application_ambiguous", InvalidInput;
    MissingCredentials => "missing_credentials", Unauthenticated;
    InvalidApiKey => "invalid_api_key", Unauthenticated;
    UnknownSigningKey => "unknown_signing_key", Unauthenticated;
    InvalidSignature => "invalid_signature", Unauthenticated;
    ExpiredTimestamp => "expired_timestamp", Unauthenticated;
    ExpiredKey => "expired_key", Unauthenticated;
    InvalidSession => "invalid_session", Unauthenticated;
    SessionRefresh => "session_refresh", Unauthenticated;
    SignInRefused => "sign_in_refused", Unauthenticated;
    SignInUnavailable => "sign_in_unavailable", Unavailable;
    RoleForbidden => "role_forbidden", Forbidden;
    WorkspaceNotFound => "workspace_not_found", NotFound;
    ProjectNotFound => "project_not_found", NotFound;
    TeamNotFound => "team_not_found", NotFound;
    ApplicationNotFound => "application_not_found", NotFound;
    EnvironmentNotFound => "environment_not_found", NotFound;
    DeploymentNotFound => "deployment_not_found", NotFound;
    ReferenceNotFound => "reference_not_found", NotFound;
    HookNotFound => "hook_not_found", NotFound;
    DeliveryNotFound => "delivery_not_found", NotFound;
    IntegrationNotFound => "integration_not_found", NotFound;
    IncidentNotFound => "incident_not_found", NotFound;
    KeyNotFound => "key_not_found", NotFound;
    SessionNotFound => "session_not_found", NotFound;
    PipelineNotFound => "pipeline_not_found", NotFound;
    EnvironmentExists => "environment_exists", Conflict;
    AlreadyExists => "already_exists", Conflict;
    IdempotencyConflict => "idempotency_conflict", Conflict;
    EnvironmentLimitReached => "environment_limit_reached", LimitReached;
    HookLimitReached => "hook_limit_reached", LimitReached;
    ValueRefused => "value_refused", InvalidInput;
    StoreUnavailable => "store_unavailable", Unavailable;
}

/// Why an unauthenticated request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No key, or a signed request missing one of its three headers.
    MissingCredentials,
    /// The API key matches no key.
    InvalidApiKey,
    /// The signing key id matches no key.
    UnknownSigningKey,
    /// No signature matches the body.
    InvalidSignature,
    /// The signed timestamp is too far from the server's clock.
    ExpiredTimestamp,
    /// The key (API or signing) is past its expiry.
    ExpiredKey,
    /// The dashboard session is unknown, signed out, expired, or its key is gone.
    InvalidSession,
    /// A person's session is due for a look at their groups: through the provider again.
    SessionRefresh,
    /// A provider's delivery carries neither its signature nor the integration's token.
    MissingIntegrationSecret,
    /// A provider's delivery is signed, or carries a token, but not with the integration's
    /// secret.
    IntegrationSecretMismatch,
}

/// Why a sign-in did not open a session: each says what the person can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// This server has no single sign-on.
    #[error("single sign-on is not set up on this server: sign in with an API key")]
    NotConfigured,
    /// The form's API keys are turned off here.
    #[error("signing in with an API key is turned off here: sign in with your company account")]
    KeySignInOff,
    /// The callback's `state` is not the one this browser left with (or the browser kept
    /// none: the attempt is older than its cookie, or began in another browser).
    #[error(
        "this sign-in did not start in this browser, or started too long ago: start again from the sign-in page"
    )]
    State,
    /// The provider said no, or refused to redeem the code.
    #[error("the sign-in provider refused: {0}. Start again from the sign-in page")]
    Provider(String),
    /// The ID token failed verification.
    #[error(
        "the sign-in provider's answer could not be verified ({0}): start again from the sign-in page, and tell your administrator if it happens again"
    )]
    InvalidToken(String),
    /// The provider cannot be reached.
    #[error("the sign-in provider cannot be reached ({0}): try again in a minute")]
    Unreachable(String),
    /// The person is in no group that opens a workspace (or not the one asked for).
    #[error(
        "{who} signed in, but {}{} gives access here: ask an administrator to add you to a group shiplog maps to a workspace (SHIPLOG_OIDC_ROLES)",
        if groups.is_empty() { "no group was sent and no default rule".to_owned() } else { format!("none of your groups ({})", groups.join(", ")) },
        workspace.as_ref().map(|w| format!(" to workspace {w}")).unwrap_or_default()
    )]
    NoAccess {
        /// Their name or email.
        who: String,
        /// The groups the provider sent.
        groups: Vec<String>,
        /// The workspace asked for, if one was.
        workspace: Option<String>,
    },
}

/// Every failure a use case reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// A field has a bad value.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A required field is absent.
    #[error("{field} is required: {hint}")]
    MissingField {
        /// The field.
        field: &'static str,
        /// What to send.
        hint: &'static str,
    },
    /// The event name is not one of the six.
    #[error("{0}")]
    InvalidEvent(InvalidEvent),
    /// A start time later than the finish time.
    #[error("Start time cannot be after end time")]
    StartAfterFinish,
    /// The request names no project and the credentials do not imply one.
    #[error("{0}")]
    ProjectRequired(String),
    /// A repository is registered in several projects and the request does not say which.
    #[error(
        "repository {repo} is registered in several projects ({projects}): use a project-scoped key or name the project"
    )]
    ApplicationAmbiguous {
        /// The repository.
        repo: String,
        /// The projects' slugs, comma-separated.
        projects: String,
    },
    /// Authentication failed.
    #[error("{}", auth_message(*.0))]
    Unauthenticated(AuthFailure),
    /// A sign-in through the OpenID provider did not open a session.
    #[error("{0}")]
    SignInRefused(SignInRefusal),
    /// The key's role may not do this.
    #[error(
        "this key has the {role} role, which cannot {action}; use a key with the {needed} role"
    )]
    Forbidden {
        /// The key's role.
        role: Role,
        /// What was attempted.
        action: &'static str,
        /// A role that may.
        needed: Role,
    },
    /// No such workspace (or not this key's).
    #[error("workspace {0:?} does not exist")]
    NotFoundWorkspace(String),
    /// No such project in this workspace (or not visible to this key).
    #[error(
        "project {0:?} does not exist in this workspace: create it first (POST /api/v1/projects)"
    )]
    ProjectNotFound(String),
    /// No such team.
    #[error("team \"{0}\" does not exist in this workspace: create it first (POST /api/v1/teams)")]
    TeamNotFound(TeamCode),
    /// No such application, and it may not be created implicitly.
    #[error(
        "application \"{0}\" does not exist in this project: assign it to an environment first (PUT /webhook/assign-apps) or create it"
    )]
    ApplicationNotFound(ApplicationCode),
    /// No application has this id (or not one visible to this key).
    #[error(
        "application {0:?} does not exist: application ids are listed by GET /api/v1/projects/{{slug}}/applications"
    )]
    ApplicationIdNotFound(String),
    /// No such environment, and it may not be created implicitly.
    #[error(
        "environment \"{0}\" does not exist in this workspace: create it first (PUT /webhook/create-environment)"
    )]
    EnvironmentNotFound(EnvironmentCode),
    /// No such deployment.
    #[error("deployment {0:?} does not exist")]
    DeploymentNotFound(String),
    /// No deployment named this reference.
    #[error("no deployment of this project names reference {0:?}")]
    ReferenceNotFound(String),
    /// No such hook.
    #[error("hook {0:?} does not exist")]
    HookNotFound(String),
    /// No such delivery.
    #[error("delivery {0:?} does not exist")]
    DeliveryNotFound(String),
    /// No such integration (or not the caller's).
    #[error("integration {0:?} does not exist")]
    IntegrationNotFound(String),
    /// No such incident (or not the caller's).
    #[error("incident {0:?} does not exist")]
    IncidentNotFound(String),
    /// No such key in this workspace.
    #[error("key {0:?} does not exist in this workspace (it may have been revoked already)")]
    KeyNotFound(String),
    /// No such live session in this workspace (or not the caller's to end).
    #[error("session {0:?} is not a live session you may end (it may have ended already)")]
    SessionNotFound(String),
    /// No application has this id (Devopness pipeline id).
    #[error(
        "pipeline {0:?} does not exist: a pipeline id is an application id (see the hooks of GET /api/v1/projects/{{slug}}/hooks)"
    )]
    PipelineNotFound(String),
    /// The environment code is taken.
    #[error("environment \"{0}\" already exists in this workspace")]
    EnvironmentExists(EnvironmentCode),
    /// A workspace, project, team or application with this code exists.
    #[error("{what} {value:?} already exists")]
    AlreadyExists {
        /// What kind of thing.
        what: &'static str,
        /// Its code.
        value: String,
    },
    /// The idempotency key was used for a different payload.
    #[error(
        "deployment id {0:?} was already used with a different payload: send a new deployment_id for a new deployment"
    )]
    IdempotencyConflict(String),
    /// The workspace's environment limit is reached.
    #[error("this workspace already has its limit of {limit} environments")]
    EnvironmentLimitReached {
        /// The limit.
        limit: u32,
    },
    /// The project's hook limit is reached.
    #[error("this project already has its limit of {limit} hooks: delete one it no longer needs")]
    HookLimitReached {
        /// The limit.
        limit: u32,
    },
    /// The database refused a value that passed every check before it (its detail is for logs
    /// only: it may quote the value).
    #[error(
        "a value of this request cannot be stored (the database refused it): check the text fields for characters it cannot hold"
    )]
    ValueRefused(BackendFailure),
    /// The backend failed; its detail is for logs only.
    #[error(
        "the database is unavailable: retry in a few seconds (a retried event is never stored twice)"
    )]
    Unavailable(BackendFailure),
}

fn auth_message(failure: AuthFailure) -> &'static str {
    match failure {
        AuthFailure::MissingCredentials => {
            "missing credentials: send an API key (Authorization: Bearer, X-API-Key, X-Clienwork-API-Key or X-API-Token), or X-Webhook-Key, X-Webhook-Timestamp and X-Webhook-Signature"
        }
        AuthFailure::InvalidApiKey => "invalid API key",
        AuthFailure::UnknownSigningKey => "unknown signing key (X-Webhook-Key)",
        AuthFailure::InvalidSignature => "invalid signature (X-Webhook-Signature)",
        AuthFailure::ExpiredTimestamp => {
            "expired timestamp (X-Webhook-Timestamp must be within 300 seconds of the server clock)"
        }
        AuthFailure::ExpiredKey => "this key has expired: ask a workspace admin for a new one",
        AuthFailure::InvalidSession => "the session has ended: sign in again",
        AuthFailure::SessionRefresh => {
            "the session's role is due to be checked with the OpenID provider: sign in again"
        }
        AuthFailure::MissingIntegrationSecret => {
            "the delivery carries neither a signature nor a token (X-Hub-Signature-256, X-Gitlab-Token, X-Shiplog-Token or ?token=): set the provider's webhook secret to the integration's secret"
        }
        AuthFailure::IntegrationSecretMismatch => {
            "the delivery's signature or token does not match the integration's secret: give the provider the secret shown when the integration was created or last rotated"
        }
    }
}

impl AppError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidField { .. } => ErrorCode::InvalidField,
            Self::MissingField { .. } => ErrorCode::MissingField,
            Self::InvalidEvent(_) => ErrorCode::InvalidEventType,
            Self::StartAfterFinish => ErrorCode::StartAfterFinish,
            Self::ProjectRequired(_) => ErrorCode::ProjectRequired,
            Self::ApplicationAmbiguous { .. } => ErrorCode::ApplicationAmbiguous,
            Self::Unauthenticated(failure) => match failure {
                AuthFailure::MissingCredentials => ErrorCode::MissingCredentials,
                AuthFailure::InvalidApiKey => ErrorCode::InvalidApiKey,
                AuthFailure::UnknownSigningKey => ErrorCode::UnknownSigningKey,
                AuthFailure::InvalidSignature => ErrorCode::InvalidSignature,
                AuthFailure::ExpiredTimestamp => ErrorCode::ExpiredTimestamp,
                AuthFailure::ExpiredKey => ErrorCode::ExpiredKey,
                AuthFailure::InvalidSession => ErrorCode::InvalidSession,
                AuthFailure::SessionRefresh => ErrorCode::SessionRefresh,
                AuthFailure::MissingIntegrationSecret => ErrorCode::MissingCredentials,
                AuthFailure::IntegrationSecretMismatch => ErrorCode::InvalidSignature,
            },
            Self::SignInRefused(SignInRefusal::Unreachable(_)) => ErrorCode::SignInUnavailable,
            Self::SignInRefused(_) => ErrorCode::SignInRefused,
            Self::Forbidden { .. } => ErrorCode::RoleForbidden,
            Self::NotFoundWorkspace(_) => ErrorCode::WorkspaceNotFound,
            Self::ProjectNotFound(_) => ErrorCode::ProjectNotFound,
            Self::TeamNotFound(_) => ErrorCode::TeamNotFound,
            Self::ApplicationNotFound(_) | Self::ApplicationIdNotFound(_) => {
                ErrorCode::ApplicationNotFound
            }
            Self::EnvironmentNotFound(_) => ErrorCode::EnvironmentNotFound,
            Self::DeploymentNotFound(_) => ErrorCode::DeploymentNotFound,
            Self::ReferenceNotFound(_) => ErrorCode::ReferenceNotFound,
            Self::HookNotFound(_) => ErrorCode::HookNotFound,
            Self::DeliveryNotFound(_) => ErrorCode::DeliveryNotFound,
            Self::IntegrationNotFound(_) => ErrorCode::IntegrationNotFound,
            Self::IncidentNotFound(_) => ErrorCode::IncidentNotFound,
            Self::KeyNotFound(_) => ErrorCode::KeyNotFound,
            Self::SessionNotFound(_) => ErrorCode::SessionNotFound,
            Self::PipelineNotFound(_) => ErrorCode::PipelineNotFound,
            Self::EnvironmentExists(_) => ErrorCode::EnvironmentExists,
            Self::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Self::IdempotencyConflict(_) => ErrorCode::IdempotencyConflict,
            Self::EnvironmentLimitReached { .. } => ErrorCode::EnvironmentLimitReached,
            Self::HookLimitReached { .. } => ErrorCode::HookLimitReached,
            Self::ValueRefused(_) => ErrorCode::ValueRefused,
            Self::Unavailable(_) => ErrorCode::StoreUnavailable,
        }
    }

    /// Shorthand for a clash with an existing record.
    pub fn already_exists(what: &'static str, value: &str) -> Self {
        Self::AlreadyExists {
            what,
            value: value.to_owned(),
        }
    }

    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            message: message.into(),
        }
    }

    /// Refuses free text holding U+0000: SQLite would store it and PostgreSQL refuse it, so
    /// every backend must see it refused the same way, as the client's error.
    pub fn check_text(field: &'static str, text: &str) -> Result<(), Self> {
        if text.contains('\0') {
            Err(Self::invalid(
                field,
                "holds the NUL character (\\u0000), which no text field may hold: remove it",
            ))
        } else {
            Ok(())
        }
    }

    /// Refuses a one-line field (a name, a branch, a status word) holding a control character
    /// or a bidirectional formatting character ([`shiplog_domain::text::check_line`]).
    pub fn check_line(field: &'static str, text: &str) -> Result<(), Self> {
        shiplog_domain::text::check_line(text).map_err(|e| Self::invalid(field, e.to_string()))
    }
}

impl From<BackendFailure> for AppError {
    fn from(failure: BackendFailure) -> Self {
        if failure.is_refused() {
            Self::ValueRefused(failure)
        } else {
            Self::Unavailable(failure)
        }
    }
}

impl From<WorkspaceStoreError> for AppError {
    fn from(error: WorkspaceStoreError) -> Self {
        match error {
            WorkspaceStoreError::CodeTaken(code) => {
                Self::already_exists("workspace", code.as_str())
            }
            WorkspaceStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<KeyStoreError> for AppError {
    fn from(error: KeyStoreError) -> Self {
        match error {
            KeyStoreError::OwnerNotFound => Self::ProjectNotFound("(the key's project)".to_owned()),
            KeyStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<ProjectStoreError> for AppError {
    fn from(error: ProjectStoreError) -> Self {
        match error {
            ProjectStoreError::SlugTaken(slug) => Self::already_exists("project", slug.as_str()),
            ProjectStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<TeamStoreError> for AppError {
    fn from(error: TeamStoreError) -> Self {
        match error {
            TeamStoreError::CodeTaken(code) => Self::already_exists("team", code.as_str()),
            TeamStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<ApplicationStoreError> for AppError {
    fn from(error: ApplicationStoreError) -> Self {
        match error {
            ApplicationStoreError::CodeTaken(code) => {
                Self::already_exists("application", code.as_str())
            }
            ApplicationStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<EnvironmentStoreError> for AppError {
    fn from(error: EnvironmentStoreError) -> Self {
        match error {
            EnvironmentStoreError::CodeTaken(code) => Self::EnvironmentExists(code),
            EnvironmentStoreError::LimitReached { limit } => {
                Self::EnvironmentLimitReached { limit }
            }
            EnvironmentStoreError::EnvironmentNotFound(code) => Self::EnvironmentNotFound(code),
            EnvironmentStoreError::Backend(failure) => failure.into(),
        }
    }
}

impl From<DeploymentStoreError> for AppError {
    fn from(error: DeploymentStoreError) -> Self {
        match error {
            DeploymentStoreError::Conflict(key) => Self::IdempotencyConflict(key),
            DeploymentStoreError::ApplicationNotFound(code) => Self::ApplicationNotFound(code),
            DeploymentStoreError::EnvironmentNotFound(code) => Self::EnvironmentNotFound(code),
            DeploymentStoreError::EnvironmentLimitReached { limit } => {
                Self::EnvironmentLimitReached { limit }
            }
            DeploymentStoreError::UnknownCursor => Self::invalid(
                "cursor",
                "is not a cursor of this workspace's listing: send back the next_cursor of the previous page unchanged",
            ),
            DeploymentStoreError::Backend(failure) => failure.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate error code");
    }

    #[test]
    fn store_errors_keep_their_meaning() {
        assert_eq!(
            AppError::from(DeploymentStoreError::Conflict("d-1".into())).code(),
            ErrorCode::IdempotencyConflict
        );
        assert_eq!(
            AppError::from(EnvironmentStoreError::LimitReached { limit: 3 })
                .code()
                .kind(),
            ErrorKind::LimitReached
        );
        let taken = AppError::from(ProjectStoreError::SlugTaken(
            shiplog_domain::ids::ProjectSlug::parse("web").unwrap(),
        ));
        assert_eq!(taken.code().kind(), ErrorKind::Conflict);
        assert_eq!(taken.to_string(), "project \"web\" already exists");
        let unavailable = AppError::from(ProjectStoreError::Backend(BackendFailure::unavailable(
            "disk full",
        )));
        assert_eq!(unavailable.code().kind(), ErrorKind::Unavailable);
        let said = unavailable.to_string();
        assert!(said.starts_with("the database is unavailable"), "{said}");
        assert!(
            !said.contains("disk full"),
            "internals stay out of messages"
        );
    }

    #[test]
    fn codes_in_messages_are_printed_bare() {
        let code = shiplog_domain::ids::ApplicationCode::parse("my-app").unwrap();
        let text = AppError::ApplicationNotFound(code).to_string();
        assert!(
            text.starts_with("application \"my-app\" does not exist"),
            "{text}"
        );
        let env = shiplog_domain::ids::EnvironmentCode::parse("qa").unwrap();
        assert!(
            AppError::EnvironmentExists(env.clone())
                .to_string()
                .starts_with("environment \"qa\"")
        );
        assert!(
            AppError::EnvironmentNotFound(env)
                .to_string()
                .starts_with("environment \"qa\"")
        );
        let team = TeamCode::parse("eng").unwrap();
        assert!(
            AppError::TeamNotFound(team)
                .to_string()
                .starts_with("team \"eng\"")
        );
    }

    #[test]
    fn messages_name_the_fix() {
        let missing = AppError::MissingField {
            field: "environment",
            hint: "send the environment code, like \"production\"",
        };
        assert_eq!(
            missing.to_string(),
            "environment is required: send the environment code, like \"production\""
        );
        let forbidden = AppError::Forbidden {
            role: Role::Ingest,
            action: "read deployments",
            needed: Role::Read,
        };
        assert!(
            forbidden
                .to_string()
                .contains("use a key with the read role")
        );
    }
}
