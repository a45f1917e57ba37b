//! Fixtures for this crate's unit tests: one mock per port, and sample records.
//!
//! A mock without expectations fails the test when called, so each test also proves which
//! ports a use case does *not* touch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, IdempotencyKey, ProjectSlug};
use shiplog_domain::key::Role;
use shiplog_domain::status::{DeploymentStatus, Provider};
use shiplog_domain::timestamp::Timestamp;
use uuid::Uuid;

use crate::auth::Principal;
use crate::ids::{ApplicationId, DeploymentId, ProjectId, WorkspaceId};
use crate::model::{Deployment, DeploymentFields, Project, ProjectLookup};
use crate::ports::{
    MockApplicationStore, MockClock, MockDeploymentStore, MockEnvironmentStore, MockHookSender,
    MockHookStore, MockIdGenerator, MockIncidentStore, MockIntegrationStore, MockKeyStore,
    MockLifecycleStore, MockPipelineEventStore, MockProjectStore, MockReferenceStore,
    MockSignatureVerifier, MockTeamStore, MockWebhookSigner, MockWorkspaceStore,
};
use crate::{App, Ports};

/// A deterministic UUID.
pub(crate) fn ids(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// The fixed "now" of the tests: 2025-09-22T12:30:00Z.
pub(crate) fn now() -> Timestamp {
    Timestamp::parse("2025-09-22T12:30:00Z").unwrap()
}

pub(crate) fn workspace() -> WorkspaceId {
    WorkspaceId::from_uuid(ids(1))
}

fn principal(role: Role) -> Principal {
    Principal {
        workspace: workspace(),
        role,
        project: None,
        actor: crate::audit::Actor::ApiKey {
            id: ids(7).to_string(),
            name: format!("{} key", role.as_str()),
        },
        address: Some("192.0.2.7".to_owned()),
    }
}

pub(crate) fn admin() -> Principal {
    principal(Role::Admin)
}

pub(crate) fn ingester() -> Principal {
    principal(Role::Ingest)
}

pub(crate) fn reader() -> Principal {
    principal(Role::Read)
}

/// `my-project`, id 5.
pub(crate) fn project() -> Project {
    Project {
        id: ProjectId::from_uuid(ids(5)),
        workspace: workspace(),
        slug: ProjectSlug::parse("my-project").unwrap(),
        name: "My Project".into(),
        created_at: Timestamp::UNIX_EPOCH,
        hotfix_patterns: None,
    }
}

pub(crate) fn sample_deployment() -> Deployment {
    Deployment {
        id: DeploymentId::from_uuid(ids(500)),
        project: project().slug,
        application: ApplicationCode::parse("my-project").unwrap(),
        application_id: ApplicationId::from_uuid(ids(501)),
        environment: EnvironmentCode::parse("production").unwrap(),
        environment_kind: EnvironmentKind::Production,
        status: DeploymentStatus::Success,
        provider: Provider::GithubActions,
        provider_status: "success".into(),
        idempotency_key: IdempotencyKey::parse("k").unwrap(),
        fields: DeploymentFields::default(),
        started_at: None,
        finished_at: Some(now()),
        created_at: now(),
        updated_at: now(),
        references: vec![],
        rework: None,
    }
}

/// One mock per port.
pub(crate) struct TestPorts {
    pub workspaces: MockWorkspaceStore,
    pub keys: MockKeyStore,
    pub projects: MockProjectStore,
    pub teams: MockTeamStore,
    pub applications: MockApplicationStore,
    pub environments: MockEnvironmentStore,
    pub deployments: MockDeploymentStore,
    pub events: MockPipelineEventStore,
    pub references: MockReferenceStore,
    pub clock: MockClock,
    pub ids: MockIdGenerator,
    pub signatures: MockSignatureVerifier,
    pub hooks: MockHookStore,
    pub integrations: MockIntegrationStore,
    pub incidents: MockIncidentStore,
    pub lifecycle: MockLifecycleStore,
    pub sender: MockHookSender,
    pub signer: MockWebhookSigner,
}

impl TestPorts {
    pub(crate) fn new() -> Self {
        Self {
            workspaces: MockWorkspaceStore::new(),
            keys: MockKeyStore::new(),
            projects: MockProjectStore::new(),
            teams: MockTeamStore::new(),
            applications: MockApplicationStore::new(),
            environments: MockEnvironmentStore::new(),
            deployments: MockDeploymentStore::new(),
            events: MockPipelineEventStore::new(),
            references: MockReferenceStore::new(),
            clock: MockClock::new(),
            ids: MockIdGenerator::new(),
            signatures: MockSignatureVerifier::new(),
            hooks: MockHookStore::new(),
            integrations: MockIntegrationStore::new(),
            incidents: MockIncidentStore::new(),
            lifecycle: {
                // Audit entries are written after changes; a test that checks them replaces
                // this mock with one expecting them.
                let mut lifecycle = MockLifecycleStore::new();
                lifecycle.expect_record_audit().returning(|_| Ok(()));
                lifecycle
            },
            sender: MockHookSender::new(),
            signer: MockWebhookSigner::new(),
        }
    }

    /// The project store knows `my-project` (by slug or id) and nothing else.
    pub(crate) fn with_project(&mut self) {
        self.projects.expect_get().returning(|ws, lookup| {
            let p = project();
            let matches = ws == p.workspace
                && match lookup {
                    ProjectLookup::Id(id) => *id == p.id,
                    ProjectLookup::Slug(slug) => *slug == p.slug,
                };
            Ok(matches.then_some(p))
        });
    }

    /// A fixed clock and sequential ids starting at 1000.
    pub(crate) fn with_clock_and_ids(&mut self) {
        self.clock.expect_now().returning(now);
        let next = Arc::new(AtomicU64::new(1000));
        self.ids
            .expect_uuid()
            .returning(move || ids(u128::from(next.fetch_add(1, Ordering::Relaxed))));
    }

    pub(crate) fn app(self) -> App {
        App::new(Ports {
            workspaces: Arc::new(self.workspaces),
            keys: Arc::new(self.keys),
            projects: Arc::new(self.projects),
            teams: Arc::new(self.teams),
            applications: Arc::new(self.applications),
            environments: Arc::new(self.environments),
            deployments: Arc::new(self.deployments),
            events: Arc::new(self.events),
            references: Arc::new(self.references),
            clock: Arc::new(self.clock),
            ids: Arc::new(self.ids),
            signatures: Arc::new(self.signatures),
            hooks: Arc::new(self.hooks),
            lifecycle: Arc::new(self.lifecycle),
            integrations: Arc::new(self.integrations),
            incidents: Arc::new(self.incidents),
            sender: Arc::new(self.sender),
            signer: Arc::new(self.signer),
        })
    }
}
