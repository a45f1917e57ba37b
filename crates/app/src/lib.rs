//! # shiplog-app
//!
//! The application layer: the [`ports`] shiplog needs from the outside world (stores, clock, id
//! generator, signature verifier) and the use cases that drive them, each a method on [`App`]:
//!
//! - [`App::ingest`]: one pipeline event from any compatible API ([`ingest`]);
//! - [`App::create_environment`], [`App::assign_applications`], [`App::environment_board`]
//!   ([`environments`]);
//! - [`App::list_deployments`], [`App::get_deployment`], [`App::get_reference`] ([`deployments`]);
//! - [`App::dora`]: the DORA metrics of a scope and window ([`metrics`]);
//! - hooks: [`App::create_hook`] and the rest of hook management, the Devopness-compatible
//!   [`App::create_pipeline_hook`], deliveries, and [`App::deliver_due`], one round of the
//!   delivery worker ([`hooks`]);
//! - [`App::authenticate`], [`App::authenticate_signed`], [`App::require_own_workspace`] ([`auth`]);
//! - [`App::ensure_master_key`], [`App::authenticate_master`], [`App::authenticate_admin`],
//!   [`App::create_workspace`], [`App::create_api_key`], [`App::create_signing_key`],
//!   [`App::create_project`], [`App::create_team`] ([`admin`]).
//!
//! Every failure is an [`error::AppError`] with a stable [`error::ErrorCode`]; adapters map the
//! code's kind to their protocol in one place.
//!
//! ## What this crate must never do
//! It never depends on actix-web, diesel or any database driver (`cargo xtask ci` checks), never
//! performs I/O except through its ports, and never reads the system clock or randomness
//! directly. Business rules live here or in `shiplog-domain`, never in adapters. With the `mocks`
//! feature, every port has a mockall mock for other crates' tests.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

pub mod admin;
pub mod audit;
pub mod auth;
pub mod deployments;
pub mod environments;
pub mod error;
pub mod hooks;
pub mod ids;
pub mod import;
pub mod incidents;
pub mod ingest;
pub mod integrations;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod overview;
pub mod pagination;
pub mod ports;
pub mod sessions;
pub mod sso;

#[cfg(test)]
mod testing;

/// Every port the use cases use, behind shared pointers.
#[derive(Clone)]
pub struct Ports {
    /// Workspaces.
    pub workspaces: Arc<dyn ports::WorkspaceStore>,
    /// API and signing keys.
    pub keys: Arc<dyn ports::KeyStore>,
    /// Projects.
    pub projects: Arc<dyn ports::ProjectStore>,
    /// Teams.
    pub teams: Arc<dyn ports::TeamStore>,
    /// Applications.
    pub applications: Arc<dyn ports::ApplicationStore>,
    /// Environments.
    pub environments: Arc<dyn ports::EnvironmentStore>,
    /// Deployments and ingestion.
    pub deployments: Arc<dyn ports::DeploymentStore>,
    /// Pipeline events.
    pub events: Arc<dyn ports::PipelineEventStore>,
    /// References.
    pub references: Arc<dyn ports::ReferenceStore>,
    /// The clock.
    pub clock: Arc<dyn ports::Clock>,
    /// Ids and secrets.
    pub ids: Arc<dyn ports::IdGenerator>,
    /// Signature verification.
    pub signatures: Arc<dyn ports::SignatureVerifier>,
    /// Outgoing hooks and deliveries.
    pub hooks: Arc<dyn ports::HookStore>,
    /// Integrations and the deliveries they received.
    pub integrations: Arc<dyn ports::IntegrationStore>,
    /// Incidents.
    pub incidents: Arc<dyn ports::IncidentStore>,
    /// Deletions, retention and the audit log.
    pub lifecycle: Arc<dyn ports::LifecycleStore>,
    /// The HTTP client of deliveries.
    pub sender: Arc<dyn ports::HookSender>,
    /// Delivery signatures.
    pub signer: Arc<dyn ports::WebhookSigner>,
}

/// The use cases, over a set of ports. Cheap to clone.
#[derive(Clone)]
pub struct App {
    ports: Ports,
    public_url: Arc<str>,
    offload: Arc<dyn ports::Offload>,
    notifier: Arc<dyn ports::ChangeNotifier>,
    /// Single sign-on, when the server has it.
    sso: Option<Arc<sso::Sso>>,
    /// Whether the dashboard's sign-in form takes API keys.
    key_sign_in: bool,
    /// Per integration, how many refused deliveries were logged this minute.
    refusals: Arc<
        std::sync::Mutex<
            std::collections::HashMap<
                ids::IntegrationId,
                shiplog_domain::integration::RefusalBudget,
            >,
        >,
    >,
}

impl App {
    /// Wires the use cases to their ports. Links in hook templates (`action.url`) start with
    /// `http://127.0.0.1:8080` until [`App::with_public_url`] says otherwise.
    pub fn new(ports: Ports) -> Self {
        Self {
            ports,
            public_url: Arc::from("http://127.0.0.1:8080"),
            offload: Arc::new(ports::Inline),
            notifier: Arc::new(ports::Silent),
            sso: None,
            key_sign_in: true,
            refusals: Arc::default(),
        }
    }

    /// Who is told when deployments change; nobody until this says otherwise.
    pub fn with_notifier(mut self, notifier: Arc<dyn ports::ChangeNotifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Where template rendering runs; in place until this says otherwise (a server gives it
    /// its blocking thread pool).
    pub fn with_offload(mut self, offload: Arc<dyn ports::Offload>) -> Self {
        self.offload = offload;
        self
    }

    /// Runs CPU-bound `work` through the [`ports::Offload`] and returns its result.
    pub(crate) async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, error::AppError> {
        let (done, result) = std::sync::mpsc::channel();
        self.offload
            .run(Box::new(move || {
                let _ = done.send(work());
            }))
            .await;
        result.try_recv().map_err(|_| {
            error::AppError::Unavailable(ports::BackendFailure::unavailable(
                "offloaded work ended without a result",
            ))
        })
    }

    /// Sets the address clients reach this server at (no trailing slash needed), for links
    /// rendered into hook deliveries.
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Arc::from(url.trim_end_matches('/'));
        self
    }

    /// The time now, by the application's clock (what sessions and windows are measured by).
    pub fn now(&self) -> shiplog_domain::timestamp::Timestamp {
        self.ports.clock.now()
    }

    /// The ports, for adapters that need a store directly (health checks).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }
}
