//! The records of outgoing hooks (hooks, deliveries, attempts, what the worker sends) and the
//! views the API shows of them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use shiplog_domain::hook::HookEvent;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::error::AppError;
use crate::ids::{ApplicationId, DeliveryId, EnvironmentId, HookId, ProjectId, WorkspaceId};
use crate::model::{Application, Deployment, Environment, Project};

/// The longest hook name.
pub const MAX_NAME_LEN: usize = 200;
/// Which page of a hook listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookPage {
    /// Page size: 1 to [`MAX_HOOKS_PER_PROJECT`] (the default).
    pub limit: Option<u32>,
    /// Start after this hook (the previous page's last id).
    pub after: Option<String>,
}

/// A page of hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct HookList {
    /// The hooks, oldest first.
    pub items: Vec<HookView>,
    /// The last hook's id when more follow: send it as `after` for the next page.
    pub next_after: Option<String>,
}

/// The most hooks one project may have: every status change of a deployment is one delivery
/// per matching hook.
pub const MAX_HOOKS_PER_PROJECT: u32 = 100;
/// The most headers a hook may send.
pub const MAX_HEADERS: usize = 32;
/// The most deliveries one listing returns.
pub const MAX_DELIVERIES_LISTED: u32 = 100;
/// How a header value is shown: never.
pub const REDACTED: &str = "[redacted]";

/// Text that must never be shown or logged: its `Debug` is `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, to use (render, sign, store).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The HTTP method of a hook's request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HookMethod {
    /// `POST` (the default, and the only one Devopness sends).
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
}

impl HookMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }

    /// Reads a method name, in any case.
    pub fn from_name(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            _ => None,
        }
    }

    pub(super) fn parse(value: &str) -> Result<Self, AppError> {
        Self::from_name(value).ok_or_else(|| AppError::invalid("method", "use POST, PUT or PATCH"))
    }
}

/// One request header: a name and a template for its value (write-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookHeader {
    /// The header name.
    pub name: String,
    /// The value template.
    pub value: SecretText,
}

/// What a hook sends: every string here except the method is a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    /// The HTTP method.
    pub method: HookMethod,
    /// The target URL template.
    pub target_url: String,
    /// Header templates.
    pub headers: Vec<HookHeader>,
    /// The JSON body; every string inside is a template. `None` sends the standard envelope
    /// (`{"type", "timestamp", "data"}`).
    pub body: Option<serde_json::Value>,
}

/// A record and its code, as hooks name their scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRef<I, C> {
    /// The id.
    pub id: I,
    /// The code.
    pub code: C,
}

/// A stored hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Its id.
    pub id: HookId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its project.
    pub project: ScopeRef<ProjectId, ProjectSlug>,
    /// Only this application's deployments, if set.
    pub application: Option<ScopeRef<ApplicationId, ApplicationCode>>,
    /// Only deployments to this environment, if set.
    pub environment: Option<ScopeRef<EnvironmentId, EnvironmentCode>>,
    /// Display name.
    pub name: String,
    /// The Devopness action type (`deploy`); informational.
    pub action_type: String,
    /// The events it fires on (at least one).
    pub events: Vec<HookEvent>,
    /// What it sends.
    pub request: HookRequest,
    /// Named secrets for templates (`secrets.<name>`), write-only.
    pub secrets: BTreeMap<String, SecretText>,
    /// The Standard Webhooks secret (`whsec_…`) deliveries are signed with.
    pub signing_secret: SecretText,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled automatically (`410 Gone` from the target), if it was.
    pub disabled_reason: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Which hooks to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookFilter {
    /// Only this project's.
    pub project: Option<ProjectId>,
    /// Only hooks scoped to exactly this application.
    pub application: Option<ApplicationId>,
    /// Only hooks scoped to exactly this environment.
    pub environment: Option<EnvironmentId>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up: the schedule ran out, the target answered `410 Gone`, or the request could not
    /// be built.
    Failed,
}

impl DeliveryStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Reads a stored word.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub at: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// Why no usable answer came (refused target, time-out, connection error, template error).
    pub error: Option<String>,
    /// The start of the response body (at most [`RESPONSE_BODY_KEPT`] bytes).
    pub response_body: Option<String>,
}

/// How much of a response body an attempt keeps.
pub const RESPONSE_BODY_KEPT: usize = 2048;

/// A delivery and its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Its id, sent as `webhook-id`.
    pub id: DeliveryId,
    /// The hook.
    pub hook: HookId,
    /// The event it answers (`deployment.succeeded`, `action.started`, … or `hook.test`).
    pub event: String,
    /// The deployment whose change raised it (none for test sends).
    pub deployment: Option<crate::ids::DeploymentId>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<Timestamp>,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A request for due deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryClaim {
    /// Who claims (one id per worker).
    pub owner: String,
    /// Now.
    pub now: Timestamp,
    /// When the lease ends if the claimer never reports back.
    pub lease_until: Timestamp,
    /// The most deliveries to claim.
    pub limit: u32,
    /// The most live leases one workspace may hold, this claim's included (every worker's
    /// counted): one workspace's slow targets never take every sender.
    pub per_workspace: u32,
}

/// The deployment change a delivery reports, as it was when the change happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySubject {
    /// The deployment (its current fields).
    pub deployment: Deployment,
    /// The status before the change.
    pub previous_status: Option<DeploymentStatus>,
    /// The status the change set.
    pub status: DeploymentStatus,
    /// Its project.
    pub project: Project,
    /// Its application.
    pub application: Application,
    /// The application's source-provider token, if one is stored: what
    /// `application.source_provider.access_token` renders unless the hook has its own
    /// `access_token` secret.
    pub source_token: Option<SecretText>,
    /// Its environment.
    pub environment: Environment,
}

/// A leased delivery, with everything needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its hook.
    pub hook: Hook,
    /// The event it answers.
    pub event: HookEvent,
    /// Attempts already made.
    pub attempts_made: u32,
    /// What it reports.
    pub subject: DeliverySubject,
}

/// What an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered; done.
    Delivered,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Given up.
    Failed,
}

/// One attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The delivery.
    pub delivery: DeliveryId,
    /// Its hook.
    pub hook: HookId,
    /// The lease holder reporting.
    pub owner: String,
    /// The attempt.
    pub attempt: Attempt,
    /// What it decided.
    pub outcome: DeliveryOutcome,
    /// Disable the hook, for this reason.
    pub disable_hook: Option<String>,
    /// When it was recorded.
    pub at: Timestamp,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The method.
    pub method: HookMethod,
    /// The rendered target URL (may hold a secret: never log it).
    pub url: SecretText,
    /// shiplog's own headers: content type, user agent and the signature.
    pub headers: Vec<(String, SecretText)>,
    /// The hook's own headers, rendered (values may hold secrets): sent to the target's origin
    /// only, never after a redirect to another origin.
    pub hook_headers: Vec<(String, SecretText)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendResult {
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The start of the body (bounded).
    pub body: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Why there was no answer.
    pub error: Option<String>,
}

/// A new or replaced hook, as the native API and the Devopness API describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookInput {
    /// Display name.
    pub name: String,
    /// Only this application.
    pub application: Option<ApplicationCode>,
    /// Only this environment.
    pub environment: Option<EnvironmentCode>,
    /// Event names.
    pub events: Vec<String>,
    /// Devopness action type (default `deploy`).
    pub action_type: Option<String>,
    /// Method (default POST).
    pub method: Option<String>,
    /// Target URL template (required unless a preset fills it).
    pub target_url: Option<String>,
    /// Header templates.
    pub headers: Vec<(String, String)>,
    /// Body template.
    pub body: Option<serde_json::Value>,
    /// Template secrets; on replacement, `None` keeps the stored ones.
    pub secrets: Option<BTreeMap<String, String>>,
    /// A preset that fills target URL, headers, body and events.
    pub preset: Option<super::presets::PresetInput>,
    /// Whether it starts enabled (default true).
    pub enabled: Option<bool>,
}

/// A hook as the API shows it: secrets and header values are never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Hook))]
pub struct HookView {
    /// Id.
    pub id: HookId,
    /// Project slug.
    pub project: ProjectSlug,
    /// The application it is limited to (also the Devopness pipeline id).
    pub application: Option<ApplicationCode>,
    /// The application's id, the Devopness `pipeline_id`.
    pub pipeline_id: Option<ApplicationId>,
    /// The environment it is limited to.
    pub environment: Option<EnvironmentCode>,
    /// Name.
    pub name: String,
    /// Devopness action type.
    pub action_type: String,
    /// Events.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled automatically.
    pub disabled_reason: Option<String>,
    /// Method.
    pub method: HookMethod,
    /// Target URL template.
    pub target_url: String,
    /// The request settings, Devopness-style.
    pub settings: HookSettingsView,
    /// The names of its secrets.
    pub secrets: Vec<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// `settings` of a shown hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = HookSettings))]
pub struct HookSettingsView {
    /// Header names; every value reads `[redacted]`.
    pub request_headers: Vec<HeaderView>,
    /// The body template, as saved.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub request_body: Option<serde_json::Value>,
}

/// A shown header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeaderView {
    /// Its name.
    pub name: String,
    /// Always `[redacted]`.
    #[cfg_attr(feature = "openapi", schema(example = "[redacted]"))]
    pub value: &'static str,
}

impl From<&Hook> for HookView {
    fn from(hook: &Hook) -> Self {
        Self {
            id: hook.id,
            project: hook.project.code.clone(),
            application: hook.application.as_ref().map(|a| a.code.clone()),
            pipeline_id: hook.application.as_ref().map(|a| a.id),
            environment: hook.environment.as_ref().map(|e| e.code.clone()),
            name: hook.name.clone(),
            action_type: hook.action_type.clone(),
            events: hook.events.iter().map(|e| e.as_str().to_owned()).collect(),
            enabled: hook.enabled,
            disabled_reason: hook.disabled_reason.clone(),
            method: hook.request.method,
            target_url: hook.request.target_url.clone(),
            settings: HookSettingsView {
                request_headers: hook
                    .request
                    .headers
                    .iter()
                    .map(|h| HeaderView {
                        name: h.name.clone(),
                        value: REDACTED,
                    })
                    .collect(),
                request_body: hook.request.body.clone(),
            },
            secrets: hook.secrets.keys().cloned().collect(),
            created_at: hook.created_at,
            updated_at: hook.updated_at,
        }
    }
}

/// A newly created hook and its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedHook {
    /// The hook.
    #[serde(flatten)]
    pub hook: HookView,
    /// The Standard Webhooks secret that verifies its deliveries.
    pub signing_secret: String,
}
