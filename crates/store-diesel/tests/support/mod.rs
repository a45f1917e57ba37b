//! Fixtures shared by the store's test binaries: the real store wired into the use cases, with a
//! deterministic clock and ids.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use shiplog_app::auth::Principal;
use shiplog_app::ids::{ProjectId, WorkspaceId};
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::model::{DeploymentFields, Project, ProjectLookup, Workspace};
use shiplog_app::ports::{
    Clock, IdGenerator, ProjectStore, SignatureError, SignatureVerifier, WorkspaceStore,
};
use shiplog_app::{App, Ports};
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, IdempotencyKey, ProjectSlug, WorkspaceCode};
use shiplog_domain::key::{Role, SigningSecret};
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;
use shiplog_store::{Store, StoreOptions};
use uuid::Uuid;

/// A clock that moves one millisecond per reading.
pub struct TickingClock(AtomicI64);

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let micros = self.0.fetch_add(1000, Ordering::Relaxed);
        Timestamp::from_unix_micros(micros).unwrap()
    }
}

/// Sequential ids, unique within one process.
pub struct SeqIds(AtomicU64);

impl IdGenerator for SeqIds {
    fn uuid(&self) -> Uuid {
        Uuid::from_u128(
            0x5151_0000_0000_0000_0000_0000_0000_0000
                | u128::from(self.0.fetch_add(1, Ordering::Relaxed)),
        )
    }
    fn secret_bytes(&self) -> [u8; 32] {
        [7; 32]
    }
}

struct NoSignatures;

impl SignatureVerifier for NoSignatures {
    fn verify(
        &self,
        _: &SigningSecret,
        _: &str,
        _: &[u8],
        _: &str,
        _: Timestamp,
    ) -> Result<(), SignatureError> {
        Err(SignatureError::Mismatch)
    }

    fn verify_hub_signature(
        &self,
        _: &SigningSecret,
        _: &[u8],
        _: &str,
    ) -> Result<(), SignatureError> {
        Err(SignatureError::Mismatch)
    }

    fn verify_pagerduty_signature(
        &self,
        _: &SigningSecret,
        _: &[u8],
        _: &str,
    ) -> Result<(), SignatureError> {
        Err(SignatureError::Mismatch)
    }
}

/// The store tests send nothing: every target is refused.
pub struct NoSender;

#[async_trait::async_trait]
impl shiplog_app::ports::HookSender for NoSender {
    async fn send(&self, _: shiplog_app::hooks::OutgoingRequest) -> shiplog_app::hooks::SendResult {
        shiplog_app::hooks::SendResult {
            error: Some("the store tests send nothing".to_owned()),
            ..Default::default()
        }
    }

    fn check_target(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

/// A signer whose signature is the message id (the store tests never check signatures).
pub struct PlainSigner;

impl shiplog_app::ports::WebhookSigner for PlainSigner {
    fn new_secret(&self, _: [u8; 32]) -> String {
        "whsec_dGVzdA==".to_owned()
    }

    fn sign(&self, _: &str, id: &str, _: i64, _: &[u8]) -> Option<String> {
        Some(format!("v1,{id}"))
    }
}

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// The use cases over a real store, their clock starting at 2025-01-01.
pub fn app(store: &Store) -> App {
    app_at(store, at("2025-01-01T00:00:00Z"))
}

/// The use cases over a real store, their clock starting at `start`.
pub fn app_at(store: &Store, start: Timestamp) -> App {
    app_at_ids(store, start, 1)
}

/// As [`app_at`], its ids counting from `first_id` (two apps over one store need apart ids).
pub fn app_at_ids(store: &Store, start: Timestamp, first_id: u64) -> App {
    let s = Arc::new(store.clone());
    App::new(Ports {
        workspaces: s.clone(),
        keys: s.clone(),
        projects: s.clone(),
        teams: s.clone(),
        applications: s.clone(),
        environments: s.clone(),
        deployments: s.clone(),
        events: s.clone(),
        references: s.clone(),
        hooks: s.clone(),
        integrations: s.clone(),
        incidents: s.clone(),
        lifecycle: s,
        sender: Arc::new(NoSender),
        signer: Arc::new(PlainSigner),
        clock: Arc::new(TickingClock(AtomicI64::new(start.unix_micros()))),
        ids: Arc::new(SeqIds(AtomicU64::new(first_id))),
        signatures: Arc::new(NoSignatures),
    })
}

pub fn open(url: &str) -> Store {
    Store::open(url, &StoreOptions::default()).unwrap()
}

/// A workspace (code `code`) with one project `web`, and an admin principal of it.
pub struct Tenant {
    pub workspace: WorkspaceId,
    pub project: ProjectId,
    pub admin: Principal,
}

/// The ids of tenant `n`, without touching a store.
pub fn tenant_ids(n: u128) -> Tenant {
    let workspace = WorkspaceId::from_uuid(Uuid::from_u128(0xaaaa_0000 + n));
    Tenant {
        workspace,
        project: ProjectId::from_uuid(Uuid::from_u128(0xbbbb_0000 + n)),
        admin: Principal {
            workspace,
            role: Role::Admin,
            project: None,
            actor: shiplog_app::audit::Actor::Master,
            address: None,
        },
    }
}

pub async fn tenant(store: &Store, code: &str, n: u128) -> Tenant {
    let Tenant {
        workspace, project, ..
    } = tenant_ids(n);
    WorkspaceStore::create(
        store,
        Workspace {
            id: workspace,
            code: WorkspaceCode::parse(code).unwrap(),
            name: code.to_owned(),
            environment_limit: None,
            created_at: at("2025-01-01T00:00:00Z"),
        },
    )
    .await
    .unwrap();
    ProjectStore::create(
        store,
        Project {
            id: project,
            workspace,
            slug: ProjectSlug::parse("web").unwrap(),
            name: "Web".into(),
            created_at: at("2025-01-01T00:00:00Z"),
            hotfix_patterns: None,
        },
    )
    .await
    .unwrap();
    tenant_ids(n)
}

/// Every deployment `admin` can see, paging through the API the way clients do.
pub async fn count_deployments(app: &App, admin: &Principal) -> usize {
    let mut count = 0;
    let mut cursor = None;
    loop {
        let page = app
            .list_deployments(
                admin,
                shiplog_app::deployments::ListDeployments {
                    limit: Some(200),
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        count += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => return count,
        }
    }
}

/// A Clienwork-style deploy event for project `web` in `production`.
pub fn deploy(event: PipelineEvent, status: Option<&str>, run: &str) -> IngestCommand {
    let mut command = IngestCommand::new(
        event,
        Provider::GithubActions,
        ApplicationRef::ProjectDefault,
    );
    command.project = Some(ProjectLookup::parse("web").unwrap());
    command.environment = Some(EnvironmentRef {
        name: "production".into(),
        create_if_missing: true,
        kind: None,
    });
    command.status = status.map(str::to_owned);
    command.fields = DeploymentFields {
        commit_sha: Some(CommitSha::parse("abc123def456").unwrap()),
        commit_message: Some("feat: login fixes #PR-1 and #PR-2".into()),
        run_url: Some(format!("https://ci.example/runs/{run}")),
        git_ref: Some("refs/heads/main".into()),
        ..DeploymentFields::default()
    };
    command
}

/// A Hivel-style event with an exclusive deployment id.
pub fn exclusive(key: &str, status: &str, finished: &str) -> IngestCommand {
    let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some(status), key);
    command.correlation = Correlation::Explicit {
        key: IdempotencyKey::parse(key).unwrap(),
        exclusive: true,
    };
    command.started_at = Some(at("2025-01-01T10:00:00Z"));
    command.finished_at = Some(at(finished));
    command
}

/// Tenant 1 (`acme`) and an app whose first `deploy.completed` (run `first`) is recorded, so
/// that the application and the environment exist and a later ingest only writes.
pub async fn after_first_deploy(store: &Store) -> (Tenant, App) {
    let t = tenant(store, "acme", 1).await;
    let app = app(store);
    app.ingest(
        &t.admin,
        deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "first"),
    )
    .await
    .unwrap();
    (t, app)
}

/// Packs every DORA day over for an hour at `now` and returns how many days it packed. On
/// PostgreSQL a day waits for the transactions running when it was marked, which may be other
/// tests' on the same cluster (a migration test's revert and re-run holds one for seconds):
/// rounds go on until none waits, for at most two minutes.
pub async fn pack_all(store: &Store, now: Timestamp) -> usize {
    let mut packed = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let packing = store.pack_dora_days(now, usize::MAX).await.unwrap();
        packed += packing.packed;
        if packing.waiting == 0 {
            return packed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DORA days still unpacked after two minutes of rounds"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs each named `async fn(url: &str)` as a test on a fresh SQLite database and on a fresh
/// PostgreSQL database (skipped where PostgreSQL cannot be used), in modules `sqlite` and
/// `postgres`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = shiplog_store::testdb::TestDb::sqlite();
                    super::$name(db.url()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = shiplog_store::testdb::TestDb::postgres() else { return };
                    super::$name(db.url()).await;
                }
            )*
        }
    };
}
