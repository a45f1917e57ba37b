//! The delivery worker with a controlled clock, against real receivers on 127.0.0.1 and real
//! databases: the retry schedule, `Retry-After`, `410 Gone`, a restart in the middle of a retry
//! sequence, a worker that dies holding a lease, and two workers on one PostgreSQL database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use shiplog_app::App;
use shiplog_app::admin::CreateWorkspace;
use shiplog_app::auth::Principal;
use shiplog_app::hooks::{Delivery, DeliveryClaim, DeliveryStatus, HookInput, WorkerSettings};
use shiplog_app::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand};
use shiplog_app::model::{DeploymentFields, ProjectLookup};
use shiplog_app::ports::{Clock, HookStore, WorkspaceStore};
use shiplog_blackbox::{receiver, receiver_answering_first};
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, IdempotencyKey, ProjectSlug, WorkspaceCode};
use shiplog_domain::key::Role;
use shiplog_domain::timestamp::Timestamp;
use shiplog_server::{HookOptions, open_app_with};
use shiplog_store::Store;
use shiplog_store::testdb::TestDb;
use wiremock::ResponseTemplate;

const MASTER: &str = "worker-test-master-key";

/// A clock the test moves by hand.
struct ManualClock(AtomicI64);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(
            Timestamp::parse("2026-03-01T12:00:00Z")
                .unwrap()
                .unix_micros(),
        )))
    }

    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

struct World {
    app: App,
    store: Store,
    admin: Principal,
}

async fn open(url: &str, clock: Arc<ManualClock>) -> (App, Store) {
    let options = HookOptions {
        allow_private_targets: true,
        ..HookOptions::default()
    };
    open_app_with(url, true, clock, &options).await.unwrap()
}

/// A workspace with project `web` on a fresh database.
async fn world(url: &str, clock: Arc<ManualClock>) -> World {
    let (app, store) = open(url, clock).await;
    app.ensure_master_key(Some(MASTER)).await.unwrap();
    let master = app.authenticate_master(Some(MASTER)).await.unwrap();
    let workspace = app
        .create_workspace(
            &master,
            CreateWorkspace {
                code: WorkspaceCode::parse("acme").unwrap(),
                name: "Acme".into(),
                environment_limit: None,
            },
        )
        .await
        .unwrap();
    let admin = Principal {
        workspace: workspace.id,
        role: Role::Admin,
        project: None,
        actor: shiplog_app::audit::Actor::Master,
        address: None,
    };
    app.create_project(&admin, ProjectSlug::parse("web").unwrap(), "Web")
        .await
        .unwrap();
    World { app, store, admin }
}

async fn hook(world: &World, target: String) -> String {
    let created = world
        .app
        .create_hook(
            &world.admin,
            ProjectLookup::parse("web").unwrap(),
            HookInput {
                name: "receiver".into(),
                target_url: Some(target),
                events: vec!["deployment.succeeded".into()],
                ..HookInput::default()
            },
        )
        .await
        .unwrap();
    created.hook.id.to_string()
}

/// A successful deployment `key` of project `web` to production.
async fn deploy(app: &App, admin: &Principal, key: &str) {
    let mut command = IngestCommand::new(
        PipelineEvent::DEPLOY_COMPLETED,
        shiplog_domain::status::Provider::GithubActions,
        ApplicationRef::ProjectDefault,
    );
    command.project = Some(ProjectLookup::parse("web").unwrap());
    command.environment = Some(EnvironmentRef {
        name: "production".into(),
        create_if_missing: true,
        kind: None,
    });
    command.status = Some("success".into());
    command.correlation = Correlation::Explicit {
        key: IdempotencyKey::parse(key).unwrap(),
        exclusive: false,
    };
    command.fields = DeploymentFields {
        commit_sha: Some(CommitSha::parse("abc123def456").unwrap()),
        ..DeploymentFields::default()
    };
    app.ingest(admin, command).await.unwrap();
}

fn worker(owner: &str) -> WorkerSettings {
    WorkerSettings {
        owner: owner.into(),
        ..WorkerSettings::default()
    }
}

async fn only_delivery(world: &World, hook: &str) -> Delivery {
    let mut list = world
        .app
        .list_deliveries(&world.admin, hook, None)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    list.remove(0)
}

#[actix_web::test]
async fn the_retry_schedule_is_followed_to_the_second_then_the_delivery_fails() {
    let db = TestDb::sqlite();
    let clock = ManualClock::new();
    let world = world(db.url(), clock.clone()).await;
    let receiver = receiver(ResponseTemplate::new(500)).await;
    let hook = hook(&world, receiver.uri()).await;
    deploy(&world.app, &world.admin, "d1").await;

    let w = worker("w");
    assert_eq!(
        world.app.deliver_due(&w).await.unwrap(),
        1,
        "the first attempt is immediate"
    );
    for (attempt, delay) in [5_i64, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
        .into_iter()
        .enumerate()
    {
        let delivery = only_delivery(&world, &hook).await;
        let last = delivery.attempts.last().unwrap().at;
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(
            delivery
                .next_attempt_at
                .unwrap()
                .since(last)
                .whole_seconds(),
            delay,
            "the wait after attempt {}",
            attempt + 1
        );
        clock.advance(delay - 1);
        assert_eq!(
            world.app.deliver_due(&w).await.unwrap(),
            0,
            "not due a second early"
        );
        clock.advance(1);
        assert_eq!(world.app.deliver_due(&w).await.unwrap(), 1);
    }
    let delivery = only_delivery(&world, &hook).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 8);
    assert_eq!(delivery.next_attempt_at, None);
    assert!(delivery.attempts.iter().all(|a| a.status_code == Some(500)));
    assert_eq!(receiver.received_requests().await.unwrap().len(), 8);
    clock.advance(100_000);
    assert_eq!(
        world.app.deliver_due(&w).await.unwrap(),
        0,
        "given up for good"
    );
}

#[actix_web::test]
async fn retry_after_pushes_the_next_attempt_back() {
    let db = TestDb::sqlite();
    let clock = ManualClock::new();
    let world = world(db.url(), clock.clone()).await;
    let receiver = receiver(ResponseTemplate::new(429).insert_header("Retry-After", "120")).await;
    let hook = hook(&world, receiver.uri()).await;
    deploy(&world.app, &world.admin, "d1").await;
    world.app.deliver_due(&worker("w")).await.unwrap();
    let delivery = only_delivery(&world, &hook).await;
    let first = delivery.attempts.first().unwrap();
    assert_eq!(first.status_code, Some(429));
    assert_eq!(
        delivery
            .next_attempt_at
            .unwrap()
            .since(first.at)
            .whole_seconds(),
        120
    );
    clock.advance(5);
    assert_eq!(
        world.app.deliver_due(&worker("w")).await.unwrap(),
        0,
        "not at the schedule's 5 s"
    );
}

#[actix_web::test]
async fn gone_disables_the_hook() {
    let db = TestDb::sqlite();
    let clock = ManualClock::new();
    let world = world(db.url(), clock.clone()).await;
    let receiver = receiver(ResponseTemplate::new(410)).await;
    let hook = hook(&world, receiver.uri()).await;
    deploy(&world.app, &world.admin, "d1").await;
    world.app.deliver_due(&worker("w")).await.unwrap();
    let delivery = only_delivery(&world, &hook).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 1);
    let shown = world.app.get_hook(&world.admin, &hook).await.unwrap();
    assert!(!shown.enabled);
    assert_eq!(
        shown.disabled_reason.as_deref(),
        Some("the target answered 410 Gone")
    );
    deploy(&world.app, &world.admin, "d2").await;
    clock.advance(60);
    assert_eq!(world.app.deliver_due(&worker("w")).await.unwrap(), 0);
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        world
            .app
            .list_deliveries(&world.admin, &hook, None)
            .await
            .unwrap()
            .len(),
        1,
        "a disabled hook gets no new deliveries"
    );
}

#[actix_web::test]
async fn a_restart_in_the_middle_of_retries_loses_nothing() {
    let db = TestDb::sqlite();
    let clock = ManualClock::new();
    let receiver =
        receiver_answering_first(2, ResponseTemplate::new(502), ResponseTemplate::new(200)).await;
    let hook = {
        let world = world(db.url(), clock.clone()).await;
        let hook = hook(&world, receiver.uri()).await;
        deploy(&world.app, &world.admin, "d1").await;
        world.app.deliver_due(&worker("first")).await.unwrap();
        clock.advance(5);
        world.app.deliver_due(&worker("first")).await.unwrap();
        assert_eq!(only_delivery(&world, &hook).await.attempts.len(), 2);
        hook
        // The server stops: app and store are dropped here.
    };
    let (app, store) = open(db.url(), clock.clone()).await;
    let workspace = WorkspaceStore::by_code(&store, &WorkspaceCode::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let restarted = World {
        app,
        store,
        admin: Principal {
            workspace,
            role: Role::Admin,
            project: None,
            actor: shiplog_app::audit::Actor::Master,
            address: None,
        },
    };
    clock.advance(299);
    assert_eq!(
        restarted.app.deliver_due(&worker("second")).await.unwrap(),
        0
    );
    clock.advance(1);
    assert_eq!(
        restarted.app.deliver_due(&worker("second")).await.unwrap(),
        1
    );
    let delivery = only_delivery(&restarted, &hook).await;
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    let codes: Vec<_> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(502), Some(502), Some(200)]);
    let ids: Vec<String> = receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![delivery.id.to_string(); 3]);
}

#[actix_web::test]
async fn a_worker_that_dies_holding_a_lease_is_replaced_when_the_lease_ends() {
    let db = TestDb::sqlite();
    let clock = ManualClock::new();
    let world = world(db.url(), clock.clone()).await;
    let receiver = receiver(ResponseTemplate::new(200)).await;
    let hook = hook(&world, receiver.uri()).await;
    deploy(&world.app, &world.admin, "d1").await;
    // A worker claims and dies before sending (or mid-send).
    let now = clock.now();
    let claimed = world
        .store
        .claim_deliveries(DeliveryClaim {
            owner: "dead".into(),
            now,
            lease_until: now.checked_add(time_seconds(60)).unwrap(),
            limit: 10,
            per_workspace: 100,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    clock.advance(30);
    assert_eq!(
        world.app.deliver_due(&worker("alive")).await.unwrap(),
        0,
        "the lease still holds"
    );
    clock.advance(30);
    assert_eq!(world.app.deliver_due(&worker("alive")).await.unwrap(), 1);
    let delivery = only_delivery(&world, &hook).await;
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
}

fn time_seconds(seconds: i64) -> ::time::Duration {
    ::time::Duration::seconds(seconds)
}

#[actix_web::test]
async fn two_workers_on_one_postgresql_never_send_a_delivery_twice() {
    let Some(db) = TestDb::postgres() else { return };
    let clock = ManualClock::new();
    let one = world(db.url(), clock.clone()).await;
    let (two, _store) = open(db.url(), clock.clone()).await;
    let receiver = receiver(ResponseTemplate::new(200).set_delay(Duration::from_millis(20))).await;
    let hook = hook(&one, receiver.uri()).await;
    let deployments = 60;
    for i in 0..deployments {
        deploy(&one.app, &one.admin, &format!("d{i}")).await;
    }
    let small = |owner: &str| WorkerSettings {
        owner: owner.into(),
        batch: 4,
        ..WorkerSettings::default()
    };
    let (a, b) = (small("a"), small("b"));
    let mut sent = (0, 0);
    loop {
        let (x, y) = futures_util::future::join(one.app.deliver_due(&a), two.deliver_due(&b)).await;
        let (x, y) = (x.unwrap(), y.unwrap());
        sent = (sent.0 + x, sent.1 + y);
        if x == 0 && y == 0 {
            break;
        }
    }
    assert_eq!(
        sent.0 + sent.1,
        deployments,
        "every delivery claimed once: {sent:?}"
    );
    assert!(sent.0 > 0 && sent.1 > 0, "both workers took part: {sent:?}");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in receiver.received_requests().await.unwrap() {
        *seen
            .entry(request.headers["webhook-id"].to_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), deployments);
    assert!(seen.values().all(|&n| n == 1), "no delivery sent twice");
    let listed = one
        .app
        .list_deliveries(&one.admin, &hook, Some(100))
        .await
        .unwrap();
    assert!(listed.iter().all(|d| d.status == DeliveryStatus::Delivered));
}

/// A hook an older release accepted whose template this release refuses (a repetition by a
/// count that is not a literal) is disabled at start with the reason, not left to fail every
/// delivery; a hook that still passes stays enabled.
async fn stored_hooks_that_no_longer_validate_are_disabled(url: &str) {
    let clock = ManualClock::new();
    let world = world(url, clock.clone()).await;
    let good = hook(&world, "https://example.com/fine".to_owned()).await;
    let bad = hook(&world, "https://example.com/old".to_owned()).await;
    let id = shiplog_app::ids::HookId::parse(&bad).unwrap();
    let mut stored = world
        .store
        .hook(world.admin.workspace, id)
        .await
        .unwrap()
        .unwrap();
    // What an older release saved: a body this release's cost check refuses.
    stored.request.body =
        Some(serde_json::json!({"text": "{{ hook.name * deployment.status|length }}"}));
    assert!(world.store.update_hook(stored).await.unwrap());
    let disabled = world.app.check_stored_hooks().await.unwrap();
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    assert_eq!(disabled[0].0, id);
    let shown = world.app.get_hook(&world.admin, &bad).await.unwrap();
    assert!(!shown.enabled);
    let reason = shown.disabled_reason.unwrap();
    assert!(reason.contains("not a literal"), "{reason}");
    assert!(
        world
            .app
            .get_hook(&world.admin, &good)
            .await
            .unwrap()
            .enabled
    );
    // Checked again, nothing more to do: disabled hooks are left as they are.
    assert!(world.app.check_stored_hooks().await.unwrap().is_empty());
}

#[actix_web::test]
async fn stored_hooks_that_no_longer_validate_are_disabled_sqlite() {
    let db = TestDb::sqlite();
    stored_hooks_that_no_longer_validate_are_disabled(db.url()).await;
}

#[actix_web::test]
async fn stored_hooks_that_no_longer_validate_are_disabled_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    stored_hooks_that_no_longer_validate_are_disabled(db.url()).await;
}
