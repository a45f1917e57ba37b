//! Retention as the server runs it (`run_retention`): over a database whose events were
//! received two months ago, the loop removes them round after round (a batch of 2 here), then
//! records the pass once in the audit log, and the deployments stay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shiplog_app::admin::{CreateApiKey, CreateWorkspace};
use shiplog_app::ingest::{ApplicationRef, EnvironmentRef, IngestCommand};
use shiplog_app::lifecycle::Retention;
use shiplog_app::model::ProjectLookup;
use shiplog_app::ports::Clock;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::WorkspaceCode;
use shiplog_domain::key::Role;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;
use shiplog_server::{HookOptions, SystemClock, open_app, open_app_with};

use crate::common::{MASTER, server};

/// A clock stopped at a time long past.
struct Then(Timestamp);

impl Clock for Then {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[actix_web::test]
async fn the_retention_loop_removes_old_events_and_records_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shiplog.db");
    // The server sets the master key; a second App over the same file, its clock 60 days
    // back, records the history.
    let _base = server(&database).await;
    let then =
        Timestamp::from_unix_micros(SystemClock.now().unix_micros() - 60 * 86_400_000_000).unwrap();
    let (past, _store) = open_app_with(
        &database.display().to_string(),
        true,
        Arc::new(Then(then)),
        &HookOptions::default(),
    )
    .await
    .unwrap();
    let master = past.authenticate_master(Some(MASTER)).await.unwrap();
    let code = WorkspaceCode::parse("acme").unwrap();
    past.create_workspace(
        &master,
        CreateWorkspace {
            code: code.clone(),
            name: "Acme".into(),
            environment_limit: None,
        },
    )
    .await
    .unwrap();
    let key = past
        .create_api_key(
            shiplog_app::admin::WorkspaceAdmin::Master(&master),
            &code,
            CreateApiKey {
                name: "admin".into(),
                role: Role::Admin,
                project: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let admin = past.authenticate(Some(key.secret.reveal())).await.unwrap();
    past.create_project(
        &admin,
        shiplog_domain::ids::ProjectSlug::parse("shop").unwrap(),
        "Shop",
    )
    .await
    .unwrap();
    for run in 0..5 {
        let mut command = IngestCommand::new(
            PipelineEvent::DEPLOY_COMPLETED,
            Provider::GithubActions,
            ApplicationRef::ProjectDefault,
        );
        command.project = Some(ProjectLookup::parse("shop").unwrap());
        command.environment = Some(EnvironmentRef {
            name: "production".into(),
            create_if_missing: true,
            kind: None,
        });
        command.status = Some("success".into());
        command.fields.run_url = Some(format!("https://ci.example/runs/{run}"));
        command.finished_at = Some(then);
        past.ingest(&admin, command).await.unwrap();
    }

    // The server's own loop, with today's clock.
    let (now, store) = open_app(&database.display().to_string(), true)
        .await
        .unwrap();
    actix_web::rt::spawn(shiplog_server::run_retention(
        now,
        Retention {
            days: 30,
            deployment_days: None,
            batch: 2,
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let entry = loop {
        let log = shiplog_app::ports::LifecycleStore::audit(&store, None, None, 10)
            .await
            .unwrap();
        if let Some(found) = log
            .into_iter()
            .find(|r| r.entry.action == shiplog_app::audit::AuditAction::RetentionPruned)
        {
            break found;
        }
        assert!(Instant::now() < deadline, "no retention pass recorded");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        entry.entry.target.name.as_deref(),
        // The audit entries of the workspace's and the key's creation, 60 days old, go too.
        Some(
            "5 events, 0 deliveries, 0 status changes, 0 received, 0 sessions, 2 audit entries, 0 deployments"
        ),
        "three rounds of at most 2, recorded as one pass"
    );
    let page = past
        .list_deployments(&admin, shiplog_app::deployments::ListDeployments::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5, "deployments stay");
}
