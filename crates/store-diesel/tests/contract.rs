//! The store contract: every test runs unchanged against SQLite and PostgreSQL.
//!
//! PostgreSQL tests use a throwaway cluster (see `shiplog_store::testdb`); without PostgreSQL on
//! the machine they are skipped locally and fail under `CI=true`.

use crate::support;

use std::collections::HashSet;

use crate::support::{app, at, deploy, exclusive, open, tenant};
use shiplog_app::deployments::ListDeployments;
use shiplog_app::environments::{AppAssignment, AssignApplications, CreateEnvironment};
use shiplog_app::error::AppError;
use shiplog_app::ids::{ApplicationId, EnvironmentId, TeamId};
use shiplog_app::model::{
    Application, Environment, ProjectLookup, ReferenceStatus, Team, Workspace,
};
use shiplog_app::ports::{
    ApplicationStore, EnvironmentStore, EnvironmentStoreError, PipelineEventStore, ProjectStore,
    TeamStore, WorkspaceStore, WorkspaceStoreError,
};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug, TeamCode, WorkspaceCode};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::DeploymentStatus;
use shiplog_store::DatabaseUrl;
use shiplog_store::migrations;
use uuid::Uuid;

async fn idempotent_reinsert(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1");
    let first = app.ingest(&t.admin, command.clone()).await.unwrap();
    let second = app.ingest(&t.admin, command).await.unwrap();
    assert!(!first.duplicate && first.created);
    assert!(second.duplicate && !second.created);
    assert_eq!(first.event, second.event);
    assert_eq!(first.deployment, second.deployment);
    assert_eq!(second.status, Some(DeploymentStatus::Success));
    assert_eq!(first.linked_references, second.linked_references);
    let page = app
        .list_deployments(&t.admin, ListDeployments::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let events = PipelineEventStore::for_deployment(&store, t.workspace, first.deployment.unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the retry wrote no second event");
}

async fn conflicting_reinsert(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let first = app
        .ingest(
            &t.admin,
            exclusive("deploy-1", "success", "2025-01-01T10:15:00Z"),
        )
        .await
        .unwrap();
    let same = app
        .ingest(
            &t.admin,
            exclusive("deploy-1", "success", "2025-01-01T10:15:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(same.deployment, first.deployment);
    assert!(same.duplicate);
    let err = app
        .ingest(
            &t.admin,
            exclusive("deploy-1", "failed", "2025-01-01T10:20:00Z"),
        )
        .await
        .unwrap_err();
    assert_eq!(err, AppError::IdempotencyConflict("deploy-1".into()));
    let stored = app
        .get_deployment(&t.admin, &first.deployment.unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(
        stored.status,
        DeploymentStatus::Success,
        "the conflict changed nothing"
    );
}

async fn out_of_order_lifecycle(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let mut completed = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "7");
    completed.finished_at = Some(at("2025-01-01T10:10:00Z"));
    let mut started = deploy(PipelineEvent::DEPLOY_STARTED, Some("running"), "7");
    started.started_at = Some(at("2025-01-01T10:00:00Z"));
    let a = app.ingest(&t.admin, completed).await.unwrap();
    let b = app.ingest(&t.admin, started).await.unwrap();
    assert_eq!(a.deployment, b.deployment, "one run, one deployment");
    assert_eq!(
        b.status,
        Some(DeploymentStatus::Success),
        "a late start does not reopen it"
    );
    let d = app
        .get_deployment(&t.admin, &a.deployment.unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(d.status, DeploymentStatus::Success);
    assert_eq!(d.started_at, Some(at("2025-01-01T10:00:00Z")));
    assert_eq!(d.finished_at, Some(at("2025-01-01T10:10:00Z")));
    assert_eq!(d.fields.branch.as_deref(), Some("main"));

    let mut rerun = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("failure"), "7");
    rerun.finished_at = Some(at("2025-01-01T11:00:00Z"));
    let c = app.ingest(&t.admin, rerun).await.unwrap();
    assert_eq!(
        c.status,
        Some(DeploymentStatus::Failed),
        "a later terminal status is a re-run"
    );
    let events = PipelineEventStore::for_deployment(&store, t.workspace, c.deployment.unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
}

async fn pagination_is_stable_under_concurrent_inserts(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let mut before = Vec::new();
    for run in 0..40 {
        let r = app
            .ingest(
                &t.admin,
                deploy(
                    PipelineEvent::DEPLOY_COMPLETED,
                    Some("success"),
                    &format!("old-{run}"),
                ),
            )
            .await
            .unwrap();
        before.push(r.deployment.unwrap());
    }
    let writer = {
        let app = app.clone();
        let admin = t.admin.clone();
        tokio::spawn(async move {
            for run in 0..30 {
                app.ingest(
                    &admin,
                    deploy(
                        PipelineEvent::DEPLOY_COMPLETED,
                        Some("success"),
                        &format!("new-{run}"),
                    ),
                )
                .await
                .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    let first_page_top = loop {
        let page = app
            .list_deployments(
                &t.admin,
                ListDeployments {
                    limit: Some(7),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|d| d.id));
        tokio::task::yield_now().await;
        match page.next_cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => break seen.first().copied(),
        }
    };
    writer.await.unwrap();
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no deployment appears twice");
    for id in &before {
        assert!(
            unique.contains(id),
            "a deployment that existed before paging was skipped"
        );
    }
    assert!(first_page_top.is_some());
}

/// Listings follow each deployment's own time (finished, else started), newest first, however
/// the records arrive: an import of older history lands under the newer ones, and a cursor
/// keeps its place while older and newer records arrive between pages.
async fn listings_follow_each_deployments_own_time(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let finished = |run: &str, hour: u32| {
        let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), run);
        command.finished_at = Some(at(&format!("2024-06-01T{hour:02}:00:00Z")));
        command
    };
    let mut ids = std::collections::HashMap::new();
    for (run, hour) in [("e", 5), ("a", 1), ("d", 4), ("b", 2), ("f", 6), ("c", 3)] {
        let r = app.ingest(&t.admin, finished(run, hour)).await.unwrap();
        ids.insert(r.deployment.unwrap(), run);
    }
    let mut running = deploy(PipelineEvent::DEPLOY_STARTED, Some("running"), "g");
    running.started_at = Some(at("2024-06-01T03:30:00Z"));
    let r = app.ingest(&t.admin, running).await.unwrap();
    ids.insert(r.deployment.unwrap(), "g");
    let page = |cursor: Option<String>| {
        let app = app.clone();
        let admin = t.admin.clone();
        async move {
            app.list_deployments(
                &admin,
                ListDeployments {
                    limit: Some(2),
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    let first = page(None).await;
    fn runs<'a>(
        ids: &std::collections::HashMap<shiplog_app::ids::DeploymentId, &'a str>,
        items: &[shiplog_app::model::Deployment],
    ) -> Vec<&'a str> {
        items
            .iter()
            .map(|d| ids.get(&d.id).copied().unwrap_or("?"))
            .collect()
    }
    assert_eq!(runs(&ids, &first.items), ["f", "e"]);
    let cursor = first.next_cursor.unwrap();
    assert_eq!(cursor.at(), Some(at("2024-06-01T05:00:00Z")));
    // Between pages: a newer record (before the cursor) and older history (after it).
    for (run, hour) in [("h", 7), ("z", 0)] {
        let r = app.ingest(&t.admin, finished(run, hour)).await.unwrap();
        ids.insert(r.deployment.unwrap(), run);
    }
    let mut seen = runs(&ids, &first.items);
    let mut next = Some(cursor.to_string());
    while let Some(cursor) = next {
        let p = page(Some(cursor)).await;
        seen.extend(runs(&ids, &p.items));
        next = p.next_cursor.map(|c| c.to_string());
    }
    assert_eq!(
        seen,
        ["f", "e", "d", "g", "c", "b", "a", "z"],
        "by each deployment's own time, each once; the running one by its start"
    );
    // A cursor from before listings were in time order (the id alone) continues alike.
    let id_only = format!("d{}", cursor.last().as_uuid().simple());
    let p = page(Some(id_only)).await;
    assert_eq!(runs(&ids, &p.items), ["d", "g"]);
    // The whole list, newest first, begins with the newer record that arrived between pages.
    let all = app
        .list_deployments(&t.admin, ListDeployments::default())
        .await
        .unwrap();
    assert_eq!(
        runs(&ids, &all.items),
        ["h", "f", "e", "d", "g", "c", "b", "a", "z"]
    );
}

async fn workspaces_are_isolated(url: &str) {
    let store = open(url);
    let a = tenant(&store, "acme", 1).await;
    let b = tenant(&store, "globex", 2).await;
    let app = app(&store);
    let ra = app
        .ingest(
            &a.admin,
            exclusive("same-key", "success", "2025-01-01T10:15:00Z"),
        )
        .await
        .unwrap();
    let rb = app
        .ingest(
            &b.admin,
            exclusive("same-key", "success", "2025-01-01T10:15:00Z"),
        )
        .await
        .unwrap();
    assert_ne!(
        ra.deployment, rb.deployment,
        "keys are unique per workspace, not globally"
    );
    assert!(
        !rb.duplicate,
        "an event of another workspace is never a duplicate"
    );
    let listed = app
        .list_deployments(&a.admin, ListDeployments::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, ra.deployment.unwrap());
    let err = app
        .get_deployment(&a.admin, &rb.deployment.unwrap().to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::DeploymentNotFound(_)));
    let other = ProjectStore::get(&store, a.workspace, &ProjectLookup::Id(b.project))
        .await
        .unwrap();
    assert_eq!(other, None);
}

async fn references_become_deployed_on_success(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let started = app
        .ingest(&t.admin, deploy(PipelineEvent::DEPLOY_STARTED, None, "9"))
        .await
        .unwrap();
    let web = ProjectSlug::parse("web").unwrap();
    let open_ref = app
        .get_reference(&t.admin, web.clone(), "PR-1")
        .await
        .unwrap();
    assert_eq!(
        open_ref.status,
        ReferenceStatus::Open,
        "not deployed while running"
    );
    let done = app
        .ingest(
            &t.admin,
            deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "9"),
        )
        .await
        .unwrap();
    assert_eq!(done.deployment, started.deployment);
    let closed = app
        .get_reference(&t.admin, web.clone(), "#PR-1")
        .await
        .unwrap();
    assert_eq!(
        closed.status,
        ReferenceStatus::Deployed,
        "fixes #PR-1 closes it"
    );
    assert_eq!(
        closed.deployed_to.as_ref().map(EnvironmentCode::as_str),
        Some("production")
    );
    assert!(closed.deployed_at.is_some());
    assert_eq!(closed.deployments.len(), 1);
    let mentioned = app
        .get_reference(&t.admin, web.clone(), "PR-2")
        .await
        .unwrap();
    assert_eq!(
        mentioned.status,
        ReferenceStatus::Open,
        "only the reference after the keyword closes"
    );
    let err = app
        .get_reference(&t.admin, web.clone(), "PR-404")
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::ReferenceNotFound(_)));

    // History arriving later: an older success to staging that closed PR-1 first. The request
    // was deployed by its first success, there and then.
    let mut older = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "8");
    older.environment = Some(shiplog_app::ingest::EnvironmentRef {
        name: "staging".into(),
        create_if_missing: true,
        kind: None,
    });
    older.finished_at = Some(at("2024-06-01T12:00:00Z"));
    app.ingest(&t.admin, older.clone()).await.unwrap();
    let first = app
        .get_reference(&t.admin, web.clone(), "PR-1")
        .await
        .unwrap();
    assert_eq!(first.deployed_at, Some(at("2024-06-01T12:00:00Z")));
    assert_eq!(
        first.deployed_to.as_ref().map(EnvironmentCode::as_str),
        Some("staging")
    );
    assert_eq!(first.deployments.len(), 2);
    // A later success changes neither.
    let mut later = older;
    later.fields.run_url = Some("https://ci.example/runs/later".into());
    later.finished_at = Some(at("2024-06-02T12:00:00Z"));
    app.ingest(&t.admin, later).await.unwrap();
    let still = app.get_reference(&t.admin, web, "PR-1").await.unwrap();
    assert_eq!(still.deployed_at, Some(at("2024-06-01T12:00:00Z")));
}

async fn a_refused_event_writes_nothing(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    // The environment would be created on first use, but the application may not be created:
    // the whole event is refused and the environment must not exist afterwards.
    let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1");
    command.application =
        shiplog_app::ingest::ApplicationRef::Code(ApplicationCode::parse("ghost").unwrap());
    command.create_application = false;
    command.environment = Some(shiplog_app::ingest::EnvironmentRef {
        name: "qa".into(),
        create_if_missing: true,
        kind: None,
    });
    let err = app.ingest(&t.admin, command).await.unwrap_err();
    assert_eq!(
        err,
        AppError::ApplicationNotFound(ApplicationCode::parse("ghost").unwrap())
    );
    let environments = EnvironmentStore::list(&store, t.workspace).await.unwrap();
    assert!(environments.is_empty(), "no half-write: {environments:?}");
    let page = app
        .list_deployments(&t.admin, ListDeployments::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

async fn concurrent_writers_get_their_own_results(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    app.ingest(
        &t.admin,
        exclusive("taken", "success", "2025-01-01T10:15:00Z"),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for n in 0..48 {
        let app = app.clone();
        let admin = t.admin.clone();
        tasks.push(tokio::spawn(async move {
            let command = if n % 4 == 0 {
                // Conflicts with the stored payload under the same exclusive key.
                exclusive("taken", "failed", &format!("2025-01-01T11:{:02}:00Z", n))
            } else {
                deploy(
                    PipelineEvent::DEPLOY_COMPLETED,
                    Some("success"),
                    &format!("c-{n}"),
                )
            };
            (n, app.ingest(&admin, command).await)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (n, result) = task.await.unwrap();
        if n % 4 == 0 {
            assert!(
                matches!(result, Err(AppError::IdempotencyConflict(_))),
                "{n}: {result:?}"
            );
        } else {
            assert!(result.unwrap().created, "{n}");
            ok += 1;
        }
    }
    let all = support::count_deployments(&app, &t.admin).await;
    assert_eq!(
        all,
        ok + 1,
        "every success committed, no conflict leaked a row"
    );
}

/// Requests for one deployment arriving at the same moment (a start and a finish, each sent
/// twice) make one deployment that keeps both: on PostgreSQL they run in concurrent
/// transactions of the writer pool. In half the rounds the deployment and its environment do
/// not exist yet (the requests race to create them); in the other half a queued event created
/// them first (the requests race to change one row, where a lost update would drop a status).
async fn one_deployment_from_simultaneous_requests_keeps_every_status(url: &str) {
    const ROUNDS: usize = 24;
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(ROUNDS * 4));
    let mut tasks = Vec::new();
    for round in 0..ROUNDS {
        let run = format!("race-{round}");
        let environment = format!("preview-{round}");
        if round % 2 == 1 {
            let mut queued = deploy(PipelineEvent::DEPLOY_STARTED, Some("queued"), &run);
            queued.started_at = Some(at("2025-01-01T10:00:00Z"));
            if let Some(target) = queued.environment.as_mut() {
                target.name.clone_from(&environment);
            }
            app.ingest(&t.admin, queued).await.unwrap();
        }
        let mut started = deploy(PipelineEvent::DEPLOY_STARTED, Some("running"), &run);
        started.started_at = Some(at("2025-01-01T10:00:00Z"));
        let mut completed = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), &run);
        completed.finished_at = Some(at("2025-01-01T10:10:00Z"));
        for mut command in [started.clone(), started, completed.clone(), completed] {
            if let Some(target) = command.environment.as_mut() {
                target.name.clone_from(&environment);
            }
            let (app, admin, barrier) = (app.clone(), t.admin.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (round, app.ingest(&admin, command).await)
            }));
        }
    }
    let mut by_round = vec![HashSet::new(); ROUNDS];
    for task in tasks {
        let (round, result) = task.await.unwrap();
        let receipt = result.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        by_round[round].insert(receipt.deployment.unwrap());
    }
    for (round, ids) in by_round.iter().enumerate() {
        assert_eq!(ids.len(), 1, "round {round}: one deployment, got {ids:?}");
        let id = ids.iter().next().unwrap();
        let d = app.get_deployment(&t.admin, &id.to_string()).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::Success, "round {round}");
        assert_eq!(
            d.started_at,
            Some(at("2025-01-01T10:00:00Z")),
            "round {round}"
        );
        assert_eq!(
            d.finished_at,
            Some(at("2025-01-01T10:10:00Z")),
            "round {round}"
        );
        let events = PipelineEventStore::for_deployment(&store, t.workspace, *id)
            .await
            .unwrap();
        assert_eq!(
            events.len(),
            if round % 2 == 1 { 3 } else { 2 },
            "round {round}: each event once: {events:?}"
        );
    }
    assert_eq!(support::count_deployments(&app, &t.admin).await, ROUNDS);
}

async fn environments_limits_and_assignments(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    TeamStore::create(
        &store,
        Team {
            id: TeamId::from_uuid(Uuid::from_u128(77)),
            workspace: t.workspace,
            code: TeamCode::parse("engineering").unwrap(),
            name: "Engineering".into(),
            created_at: at("2025-01-01T00:00:00Z"),
        },
    )
    .await
    .unwrap();
    let request = |code: &str, position: Option<i32>| CreateEnvironment {
        name: code.to_uppercase(),
        code: EnvironmentCode::parse(code).unwrap(),
        team: TeamCode::parse("engineering").unwrap(),
        url: None,
        position,
        kind: EnvironmentKind::guess(code),
    };
    app.create_environment(&t.admin, request("staging", Some(5)))
        .await
        .unwrap();
    let production = app
        .create_environment(&t.admin, request("production", None))
        .await
        .unwrap();
    assert_eq!(production.position, 6, "no position: after the last one");
    let err = app
        .create_environment(&t.admin, request("staging", None))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AppError::EnvironmentExists(EnvironmentCode::parse("staging").unwrap())
    );
    let listed: Vec<String> = EnvironmentStore::list(&store, t.workspace)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.code.to_string())
        .collect();
    assert_eq!(listed, ["staging", "production"]);

    let assign = |envs: &[&str]| AssignApplications {
        project: ProjectLookup::parse("web").unwrap(),
        apps: vec![AppAssignment {
            application: ApplicationCode::parse("api").unwrap(),
            environments: envs
                .iter()
                .map(|e| EnvironmentCode::parse(e).unwrap())
                .collect(),
        }],
    };
    let err = app
        .assign_applications(&t.admin, assign(&["staging", "nowhere"]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AppError::EnvironmentNotFound(EnvironmentCode::parse("nowhere").unwrap())
    );
    let apps = ApplicationStore::list(&store, t.workspace, t.project)
        .await
        .unwrap();
    assert!(
        apps.is_empty(),
        "all or nothing: the application was not created either"
    );
    assert_eq!(
        app.assign_applications(&t.admin, assign(&["staging", "production"]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        app.assign_applications(&t.admin, assign(&["staging"]))
            .await
            .unwrap(),
        0,
        "idempotent"
    );

    // A workspace limit is checked in the same transaction as the insert.
    let limited = Workspace {
        id: shiplog_app::ids::WorkspaceId::from_uuid(Uuid::from_u128(0xcc)),
        code: WorkspaceCode::parse("tiny").unwrap(),
        name: "Tiny".into(),
        environment_limit: Some(1),
        created_at: at("2025-01-01T00:00:00Z"),
    };
    WorkspaceStore::create(&store, limited.clone())
        .await
        .unwrap();
    let env = |code: &str, n: u128| Environment {
        id: EnvironmentId::from_uuid(Uuid::from_u128(n)),
        workspace: limited.id,
        code: EnvironmentCode::parse(code).unwrap(),
        name: code.into(),
        kind: EnvironmentKind::Other,
        url: None,
        position: 0,
        team: None,
        created_at: at("2025-01-01T00:00:00Z"),
    };
    EnvironmentStore::create(&store, env("one", 901), None)
        .await
        .unwrap();
    let err = EnvironmentStore::create(&store, env("two", 902), None)
        .await
        .unwrap_err();
    assert_eq!(err, EnvironmentStoreError::LimitReached { limit: 1 });
}

/// Per environment: (application, assigned, in progress, has a current version).
type BoardSummary = Vec<(String, Vec<(String, bool, bool, bool)>)>;

async fn the_board_shows_current_versions_by_deployment_time(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let finished = |run: &str, status: &str, time: &str| {
        let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some(status), run);
        command.finished_at = Some(at(time));
        command
    };
    let first = app
        .ingest(&t.admin, finished("1", "success", "2025-01-01T10:10:00Z"))
        .await
        .unwrap();
    // A newer failure does not replace the current version.
    app.ingest(&t.admin, finished("2", "failure", "2025-01-01T11:00:00Z"))
        .await
        .unwrap();
    // A success that arrives later but finished earlier does not either.
    app.ingest(&t.admin, finished("3", "success", "2025-01-01T09:00:00Z"))
        .await
        .unwrap();
    let board = || app.environment_board(&t.admin, ProjectLookup::parse("web").unwrap());
    let before = board().await.unwrap();
    assert_eq!(before.len(), 1);
    let production = &before[0].applications;
    assert_eq!(production.len(), 1);
    assert_eq!(production[0].application.as_str(), "web");
    assert!(!production[0].assigned, "deployed, never assigned");
    assert!(!production[0].in_progress);
    assert_eq!(
        production[0].current.as_ref().map(|d| d.id),
        first.deployment,
        "the last success by deployment time"
    );

    // A newer run in progress, and an application assigned to a second, empty environment.
    let mut running = deploy(PipelineEvent::DEPLOY_STARTED, Some("running"), "4");
    running.started_at = Some(at("2025-01-01T12:00:00Z"));
    app.ingest(&t.admin, running).await.unwrap();
    EnvironmentStore::create(
        &store,
        Environment {
            id: EnvironmentId::from_uuid(Uuid::from_u128(0xe1)),
            workspace: t.workspace,
            code: EnvironmentCode::parse("staging").unwrap(),
            name: "Staging".into(),
            kind: EnvironmentKind::Staging,
            url: None,
            position: -1,
            team: None,
            created_at: at("2025-01-01T00:00:00Z"),
        },
        Some(-1),
    )
    .await
    .unwrap();
    app.assign_applications(
        &t.admin,
        AssignApplications {
            project: ProjectLookup::parse("web").unwrap(),
            apps: vec![AppAssignment {
                application: ApplicationCode::parse("api").unwrap(),
                environments: vec![EnvironmentCode::parse("staging").unwrap()],
            }],
        },
    )
    .await
    .unwrap();
    let after = board().await.unwrap();
    let summary: BoardSummary = after
        .iter()
        .map(|e| {
            (
                e.code.to_string(),
                e.applications
                    .iter()
                    .map(|a| {
                        (
                            a.application.to_string(),
                            a.assigned,
                            a.in_progress,
                            a.current.is_some(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("staging".into(), vec![("api".into(), true, false, false)]),
            ("production".into(), vec![("web".into(), false, true, true)]),
        ]
    );
}

async fn records_round_trip_and_codes_are_unique(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let again = Workspace {
        id: shiplog_app::ids::WorkspaceId::from_uuid(Uuid::from_u128(0xdd)),
        code: WorkspaceCode::parse("acme").unwrap(),
        name: "Acme 2".into(),
        environment_limit: None,
        created_at: at("2025-01-01T00:00:00Z"),
    };
    assert_eq!(
        WorkspaceStore::create(&store, again).await.unwrap_err(),
        WorkspaceStoreError::CodeTaken(WorkspaceCode::parse("acme").unwrap())
    );
    let ws = WorkspaceStore::by_code(&store, &WorkspaceCode::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ws.id, t.workspace);
    let repo = RepoIdentity::parse("git@github.com:acme/api.git").unwrap();
    let application = Application {
        source_provider: None,
        id: ApplicationId::from_uuid(Uuid::from_u128(0xee)),
        workspace: t.workspace,
        project: t.project,
        code: ApplicationCode::parse("api").unwrap(),
        name: "API".into(),
        repo: Some(repo.clone()),
        created_at: at("2025-01-01T00:00:00.123456Z"),
    };
    ApplicationStore::create(&store, application.clone())
        .await
        .unwrap();
    let found = ApplicationStore::by_repo(&store, t.workspace, &repo)
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![application.clone()],
        "microsecond timestamps survive"
    );
    assert_eq!(
        ApplicationStore::get(&store, t.workspace, t.project, &application.code)
            .await
            .unwrap(),
        Some(application)
    );
    let project = ProjectStore::get(
        &store,
        t.workspace,
        &ProjectLookup::Slug(ProjectSlug::parse("web").unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(project.id, t.project);
    store.ping().await.unwrap();
}

async fn the_master_key_is_kept_as_a_replaceable_hash(url: &str) {
    let store = open(url);
    let app = app(&store);
    let generated = app
        .ensure_master_key(None)
        .await
        .unwrap()
        .expect("generated on first start");
    assert!(
        app.ensure_master_key(None).await.unwrap().is_none(),
        "kept across starts"
    );
    app.authenticate_master(Some(generated.reveal()))
        .await
        .unwrap();
    app.ensure_master_key(Some("configured-master-key-123"))
        .await
        .unwrap();
    assert!(
        app.authenticate_master(Some(generated.reveal()))
            .await
            .is_err(),
        "replaced"
    );
    app.authenticate_master(Some("configured-master-key-123"))
        .await
        .unwrap();
}

async fn migrations_go_up_down_up(url: &str) {
    let store = open(url);
    tenant(&store, "acme", 1).await;
    drop(store);
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    let reverted = migrations::revert_all(&mut conn).unwrap();
    assert!(!reverted.is_empty());
    assert_eq!(migrations::pending(&mut conn).unwrap(), reverted.len());
    let applied = migrations::run_pending(&mut conn).unwrap();
    assert_eq!(applied.len(), reverted.len());
    drop(conn);
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let receipt = app(&store)
        .ingest(
            &t.admin,
            deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1"),
        )
        .await
        .unwrap();
    assert!(receipt.created, "the schema works after down and up");
}

async fn nul_text_is_refused_alike_on_every_backend(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let mut message = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1");
    message.fields.commit_message = Some("fix\0: x".into());
    let mut branch = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "2");
    branch.fields.branch = Some("main\0".into());
    let mut environment = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "3");
    environment.environment = Some(shiplog_app::ingest::EnvironmentRef {
        name: "prod\0".into(),
        create_if_missing: true,
        kind: None,
    });
    for (command, field) in [
        (message, "commit_message"),
        (branch, "branch"),
        (environment, "environment"),
    ] {
        let err = app.ingest(&t.admin, command).await.unwrap_err();
        assert!(
            matches!(err, AppError::InvalidField { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
    }
    assert_eq!(support::count_deployments(&app, &t.admin).await, 0);
}

/// A value the database cannot hold is the client's error, never an outage: below the use cases'
/// own checks, text holding U+0000 is stored by SQLite and refused by PostgreSQL, and the
/// refusal is reported as `Refused`.
async fn a_value_the_database_refuses_is_not_unavailability(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let result = ProjectStore::create(
        &store,
        shiplog_app::model::Project {
            id: shiplog_app::ids::ProjectId::from_uuid(Uuid::from_u128(0xbbbb_eeee)),
            workspace: t.workspace,
            slug: ProjectSlug::parse("nul").unwrap(),
            name: "a\0b".into(),
            created_at: at("2025-01-01T00:00:00Z"),
            hotfix_patterns: None,
        },
    )
    .await;
    match result {
        Ok(()) => assert!(url.starts_with("sqlite"), "PostgreSQL cannot hold U+0000"),
        Err(shiplog_app::ports::ProjectStoreError::Backend(failure)) if failure.is_refused() => {
            assert!(failure.detail().contains("database error"), "{failure:?}");
        }
        Err(other) => panic!("a refused value reported as {other:?}"),
    }
    let app_error = AppError::from(shiplog_app::ports::ProjectStoreError::Backend(
        shiplog_app::ports::BackendFailure::refused("x"),
    ));
    assert_eq!(
        app_error.code().kind(),
        shiplog_app::error::ErrorKind::InvalidInput
    );
}

/// A second project `api` in tenant `t`'s workspace.
async fn second_project(store: &shiplog_store::Store, t: &support::Tenant) {
    ProjectStore::create(
        store,
        shiplog_app::model::Project {
            id: shiplog_app::ids::ProjectId::from_uuid(Uuid::from_u128(0xbbbb_ffff)),
            workspace: t.workspace,
            slug: ProjectSlug::parse("api").unwrap(),
            name: "API".into(),
            created_at: at("2025-01-01T00:00:00Z"),
            hotfix_patterns: None,
        },
    )
    .await
    .unwrap();
}

/// The environments of each project's board, with their applications.
async fn boards(app: &shiplog_app::App, t: &support::Tenant) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for project in ["web", "api"] {
        for environment in app
            .environment_board(&t.admin, ProjectLookup::parse(project).unwrap())
            .await
            .unwrap()
        {
            out.push((
                format!("{project}/{}", environment.code),
                environment
                    .applications
                    .iter()
                    .map(|a| a.application.to_string())
                    .collect(),
            ));
        }
    }
    out
}

async fn projects_share_the_workspace_environments(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    second_project(&store, &t).await;
    let app = app(&store);
    let web = app
        .ingest(
            &t.admin,
            deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1"),
        )
        .await
        .unwrap();
    let mut api_deploy = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("failure"), "2");
    api_deploy.project = Some(ProjectLookup::parse("api").unwrap());
    let api = app.ingest(&t.admin, api_deploy).await.unwrap();
    let environments = EnvironmentStore::list(&store, t.workspace).await.unwrap();
    assert_eq!(
        environments
            .iter()
            .map(|e| e.code.to_string())
            .collect::<Vec<_>>(),
        ["production"],
        "one code, one environment of the workspace"
    );
    for receipt in [&web, &api] {
        let deployment = app
            .get_deployment(&t.admin, &receipt.deployment.unwrap().to_string())
            .await
            .unwrap();
        assert_eq!(deployment.environment.as_str(), "production");
    }

    // A team's environment, created with no project, used by one project only.
    TeamStore::create(
        &store,
        Team {
            id: TeamId::from_uuid(Uuid::from_u128(78)),
            workspace: t.workspace,
            code: TeamCode::parse("platform").unwrap(),
            name: "Platform".into(),
            created_at: at("2025-01-01T00:00:00Z"),
        },
    )
    .await
    .unwrap();
    let created = app
        .create_environment(
            &t.admin,
            CreateEnvironment {
                name: "Staging".into(),
                code: EnvironmentCode::parse("staging").unwrap(),
                team: TeamCode::parse("platform").unwrap(),
                url: None,
                position: Some(-1),
                kind: EnvironmentKind::Staging,
            },
        )
        .await
        .unwrap();
    assert_eq!(created.code.as_str(), "staging");
    app.assign_applications(
        &t.admin,
        AssignApplications {
            project: ProjectLookup::parse("api").unwrap(),
            apps: vec![AppAssignment {
                application: ApplicationCode::parse("api").unwrap(),
                environments: vec![EnvironmentCode::parse("staging").unwrap()],
            }],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        boards(&app, &t).await,
        [
            ("web/production".to_owned(), vec!["web".to_owned()]),
            ("api/staging".to_owned(), vec!["api".to_owned()]),
            ("api/production".to_owned(), vec!["api".to_owned()]),
        ],
        "each board lists, by position, the environments its project uses"
    );

    // DORA by project counts only that project's deployments in the shared environment.
    let dora = |project: Option<&str>| {
        let app = app.clone();
        let admin = t.admin.clone();
        let project = project.map(|p| ProjectSlug::parse(p).unwrap());
        async move {
            app.dora(
                &admin,
                shiplog_app::metrics::DoraRequest {
                    project,
                    from: Some(at("2024-12-01T00:00:00Z")),
                    to: Some(at("2025-02-01T00:00:00Z")),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    let rate = |view: &shiplog_app::metrics::DoraView| {
        serde_json::to_value(&view.report.change_failure_rate).unwrap()["value"].clone()
    };
    assert_eq!(rate(&dora(Some("web")).await), serde_json::json!(0.0));
    assert_eq!(rate(&dora(Some("api")).await), serde_json::json!(1.0));
    assert_eq!(rate(&dora(None).await), serde_json::json!(0.5));
}

/// The rows of a workspace with two projects that each had `prod` and `qa` environments, as
/// the schema before environments belonged to the workspace held them.
const PER_PROJECT_ROWS: &str = "
INSERT INTO workspaces (id, code, name, environment_limit, created_at) VALUES ('w1', 'acme', 'Acme', NULL, 1);
INSERT INTO projects (id, workspace_id, slug, name, created_at) VALUES
  ('p1', 'w1', 'web', 'Web', 1), ('p2', 'w1', 'api', 'API', 2);
INSERT INTO teams (id, workspace_id, code, name, created_at) VALUES ('t1', 'w1', 'platform', 'Platform', 1);
INSERT INTO applications (id, workspace_id, project_id, code, name, repo, created_at) VALUES
  ('a1', 'w1', 'p1', 'web', 'Web', NULL, 1), ('a2', 'w1', 'p2', 'api', 'API', NULL, 2);
INSERT INTO environments (id, workspace_id, project_id, code, name, kind, url, position, team_id, created_at) VALUES
  ('e-web-prod', 'w1', 'p1', 'prod', 'Prod (web)', 'staging', NULL, 0, 't1', 10),
  ('e-api-prod', 'w1', 'p2', 'prod', 'Prod (api)', 'production', NULL, 4, NULL, 20),
  ('e-web-qa', 'w1', 'p1', 'qa', 'QA (web)', 'testing', NULL, 1, NULL, 30),
  ('e-api-qa', 'w1', 'p2', 'qa', 'QA (api)', 'development', NULL, 5, NULL, 40),
  ('e-api-solo', 'w1', 'p2', 'solo', 'Solo', 'other', NULL, 6, NULL, 50);
INSERT INTO application_environments (application_id, environment_id, created_at) VALUES
  ('a1', 'e-web-prod', 1), ('a2', 'e-api-prod', 1), ('a2', 'e-api-qa', 1);
INSERT INTO deployments (id, workspace_id, project_id, application_id, environment_id, idempotency_key,
    payload_fingerprint, status, provider, provider_status, status_at, started_at, finished_at, deployed_at,
    created_at, updated_at) VALUES
  ('d1', 'w1', 'p1', 'a1', 'e-web-prod', 'k1', 'f1', 'success', 'generic', 'success', 100, NULL, 100, 100, 100, 100),
  ('d2', 'w1', 'p2', 'a2', 'e-api-prod', 'k2', 'f2', 'failed', 'generic', 'failed', 200, NULL, 200, 200, 200, 200),
  ('d3', 'w1', 'p2', 'a2', 'e-api-qa', 'k3', 'f3', 'success', 'generic', 'success', 300, NULL, 300, 300, 300, 300);
INSERT INTO pipeline_events (id, workspace_id, project_id, application_id, environment_id, deployment_id, event,
    provider, provider_status, status, commit_sha, occurred_at, received_at, fingerprint) VALUES
  ('ev2', 'w1', 'p2', 'a2', 'e-api-prod', 'd2', 'deploy.completed', 'generic', 'failed', 'failed', NULL, 200, 200, 'fp2');
INSERT INTO change_references (project_id, ref_key, workspace_id, status, deployed_at, deployed_environment_id, created_at) VALUES
  ('p2', 'PR-1', 'w1', 'deployed', 200, 'e-api-prod', 200);
INSERT INTO hooks (id, workspace_id, project_id, application_id, environment_id, name, action_type, events, method,
    target_url, headers, body, secrets, signing_secret, enabled, disabled_reason, created_at, updated_at) VALUES
  ('h1', 'w1', 'p2', NULL, 'e-api-qa', 'qa hook', 'deploy', 'deployment.succeeded', 'POST',
   'https://example.com/x', '[]', NULL, '{}', 'whsec_dGVzdA==', TRUE, NULL, 1, 1);
";

async fn per_project_environments_merge_by_code(url: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    drop(open(url));
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    // Back to the schema before the migration under test, however many came after it.
    let mut reverted = 0;
    while migrations::revert_last(&mut conn).unwrap() != "20261128000006" {
        reverted += 1;
    }
    conn.batch_execute(PER_PROJECT_ROWS).unwrap();
    // `shiplog migrate --plan` says which environments will merge, and writes nothing.
    let plan = migrations::plan(&mut conn).unwrap();
    assert_eq!(plan.len(), reverted + 1);
    assert!(
        plan[0].name.ends_with("000006_workspace_environments"),
        "{plan:?}"
    );
    assert_eq!(
        plan[0].details,
        [
            "workspace acme: the 2 environments named prod become one (the oldest, kind production)",
            "workspace acme: the 2 environments named qa become one (the oldest)",
        ]
    );
    assert_eq!(plan[0].rewrites, Some(("environments", 5)));
    assert_eq!(migrations::pending(&mut conn).unwrap(), reverted + 1);
    assert_eq!(
        migrations::run_pending(&mut conn).unwrap().len(),
        reverted + 1
    );
    assert!(migrations::plan(&mut conn).unwrap().is_empty());

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Pair {
        #[diesel(sql_type = diesel::sql_types::Text)]
        a: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        b: String,
    }
    fn pairs(conn: &mut shiplog_store::conn::DbConn, sql: &str) -> Vec<(String, String)> {
        let rows: Vec<Pair> = match conn {
            shiplog_store::conn::DbConn::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
            shiplog_store::conn::DbConn::Postgresql(c) => diesel::sql_query(sql).load(c).unwrap(),
        };
        rows.into_iter().map(|p| (p.a, p.b)).collect()
    }
    let own = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT id AS a, code || ' ' || kind || ' ' || name AS b FROM environments ORDER BY id"
        ),
        own(&[
            ("e-api-solo", "solo other Solo"),
            // The older of the two prod environments survives, production because one was.
            ("e-web-prod", "prod production Prod (web)"),
            // Neither qa was production: the older one's kind stays.
            ("e-web-qa", "qa testing QA (web)"),
        ])
    );
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT id AS a, environment_id AS b FROM deployments ORDER BY id"
        ),
        own(&[
            ("d1", "e-web-prod"),
            ("d2", "e-web-prod"),
            ("d3", "e-web-qa")
        ]),
        "no deployment lost, each in the merged environment"
    );
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT id AS a, environment_id AS b FROM pipeline_events"
        ),
        own(&[("ev2", "e-web-prod")])
    );
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT application_id AS a, environment_id AS b FROM application_environments \
             ORDER BY application_id, environment_id"
        ),
        own(&[
            ("a1", "e-web-prod"),
            ("a2", "e-web-prod"),
            ("a2", "e-web-qa")
        ])
    );
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT ref_key AS a, deployed_environment_id AS b FROM change_references"
        ),
        own(&[("PR-1", "e-web-prod")])
    );
    assert_eq!(
        pairs(&mut conn, "SELECT id AS a, environment_id AS b FROM hooks"),
        own(&[("h1", "e-web-qa")])
    );
    // The new uniqueness holds: a second `prod` in the workspace is refused.
    let again = conn.batch_execute(
        "INSERT INTO environments (id, workspace_id, code, name, kind, url, position, team_id, created_at) \
         VALUES ('e-again', 'w1', 'prod', 'Again', 'other', NULL, 9, NULL, 60)",
    );
    assert!(again.is_err(), "codes are unique per workspace");
    // Deleting a project no longer deletes the environments its applications used.
    conn.batch_execute("DELETE FROM projects WHERE id = 'p1'")
        .unwrap();
    assert_eq!(
        pairs(
            &mut conn,
            "SELECT id AS a, environment_id AS b FROM deployments ORDER BY id"
        ),
        own(&[("d2", "e-web-prod"), ("d3", "e-web-qa")])
    );
}

async fn sessions_act_as_their_key_until_it_is_revoked(url: &str) {
    use shiplog_app::ids::ApiKeyId;
    use shiplog_app::model::{ApiKeyRecord, SessionRecord};
    use shiplog_app::ports::{KeyRef, KeyStore};
    use shiplog_domain::key::{KeyHash, Role, SessionSecret};

    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let key = ApiKeyId::from_uuid(Uuid::from_u128(0xdd));
    KeyStore::create_api_key(
        &store,
        ApiKeyRecord {
            id: key,
            workspace: t.workspace,
            name: "laptop".into(),
            role: Role::Read,
            project: Some(t.project),
            hash: KeyHash::of("shiplog_laptop"),
            hint: "shiplog_lap".into(),
            created_at: at("2025-01-01T00:00:00Z"),
            expires_at: Some(at("2026-01-01T00:00:00Z")),
            last_used_at: None,
        },
    )
    .await
    .unwrap();
    let open_session = |n: u8, expires: &str| {
        let secret = SessionSecret::from_random([n; 32]);
        let record = SessionRecord {
            hash: secret.hash(),
            workspace: t.workspace,
            holder: shiplog_app::model::SessionHolder::Key(key),
            address: None,
            created_at: at("2025-01-01T00:00:00Z"),
            expires_at: at(expires),
        };
        (secret, record)
    };
    let (first, record) = open_session(1, "2025-01-01T12:00:00Z");
    store.create_session(record, 20).await.unwrap();
    let grant = store.session(&first.hash()).await.unwrap().unwrap();
    assert_eq!(grant.workspace, t.workspace);
    assert_eq!(grant.role, Role::Read);
    assert_eq!(grant.project, Some(t.project));
    assert_eq!(grant.key_expires_at, Some(at("2026-01-01T00:00:00Z")));
    assert_eq!(grant.expires_at, at("2025-01-01T12:00:00Z"));
    assert_eq!(
        store.session(&KeyHash::of(first.reveal())).await.unwrap(),
        Some(grant),
        "the stored hash is the secret's"
    );
    assert!(
        store
            .session(&KeyHash::of("other"))
            .await
            .unwrap()
            .is_none()
    );

    // Signing out ends it; a second sign-out finds nothing.
    assert!(store.delete_session(&first.hash()).await.unwrap());
    assert!(store.session(&first.hash()).await.unwrap().is_none());
    assert!(!store.delete_session(&first.hash()).await.unwrap());

    // Expired sessions are deleted, live ones kept.
    let (old, record) = open_session(2, "2025-01-01T01:00:00Z");
    store.create_session(record, 20).await.unwrap();
    let (live, record) = open_session(3, "2025-01-02T00:00:00Z");
    store.create_session(record, 20).await.unwrap();
    assert_eq!(
        store
            .delete_expired_sessions(at("2025-01-01T06:00:00Z"))
            .await
            .unwrap(),
        1
    );
    assert!(store.session(&old.hash()).await.unwrap().is_none());
    assert!(store.session(&live.hash()).await.unwrap().is_some());

    // A key keeps its newest sessions only: one more ends the oldest.
    let mut opened = Vec::new();
    for n in 10..13u8 {
        let secret = SessionSecret::from_random([n; 32]);
        let record = SessionRecord {
            hash: secret.hash(),
            workspace: t.workspace,
            holder: shiplog_app::model::SessionHolder::Key(key),
            address: None,
            created_at: at(&format!("2025-01-01T00:00:{n}Z")),
            expires_at: at("2025-01-02T00:00:00Z"),
        };
        store.create_session(record, 3).await.unwrap();
        opened.push(secret);
    }
    assert!(
        store.session(&live.hash()).await.unwrap().is_none(),
        "the oldest ended"
    );
    for secret in &opened {
        assert!(store.session(&secret.hash()).await.unwrap().is_some());
    }

    // Revoking the key ends its sessions.
    assert!(
        store
            .delete_key(t.workspace, KeyRef::Api(key))
            .await
            .unwrap()
    );
    assert!(store.session(&live.hash()).await.unwrap().is_none());
}

async fn a_person_is_one_row_per_issuer_and_subject_and_their_sessions_hold_a_role(url: &str) {
    use shiplog_app::audit::Actor;
    use shiplog_app::ids::{PersonId, WorkspaceId};
    use shiplog_app::model::{PersonRecord, SessionHolder, SessionRecord};
    use shiplog_app::ports::KeyStore;
    use shiplog_domain::key::{Role, SessionSecret};

    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let person = |id: u128, name: &str, at_: &str| PersonRecord {
        id: PersonId::from_uuid(Uuid::from_u128(id)),
        issuer: "https://id.example.test".into(),
        subject: "248289761001".into(),
        name: name.into(),
        email: Some("jane@example.test".into()),
        created_at: at(at_),
        signed_in_at: at(at_),
    };
    let first = store
        .record_person(person(1, "Jane", "2025-01-01T00:00:00Z"))
        .await
        .unwrap();
    // A second sign-in of the same issuer and subject keeps the row (and its id), with the
    // new name and time.
    let again = store
        .record_person(person(2, "Jane Doe", "2025-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.name, "Jane Doe");
    assert_eq!(again.created_at, at("2025-01-01T00:00:00Z"));
    assert_eq!(again.signed_in_at, at("2025-01-02T00:00:00Z"));
    let mut other = person(3, "John", "2025-01-02T00:00:00Z");
    other.issuer = "https://other.example.test".into();
    let other = store.record_person(other).await.unwrap();
    assert_ne!(other.id, first.id, "another issuer, another person");

    let open_session = |n: u8, role: Role| {
        let secret = SessionSecret::from_random([n; 32]);
        let record = SessionRecord {
            hash: secret.hash(),
            workspace: t.workspace,
            holder: SessionHolder::Person {
                id: first.id,
                role,
                refresh_at: at("2025-01-02T00:10:00Z"),
            },
            address: Some("127.0.0.1".into()),
            created_at: at(&format!("2025-01-02T00:00:{n:02}Z")),
            expires_at: at("2025-01-02T12:00:00Z"),
        };
        (secret, record)
    };
    let (admin, record) = open_session(1, Role::Admin);
    store.create_session(record, 20).await.unwrap();
    let grant = store.session(&admin.hash()).await.unwrap().unwrap();
    assert_eq!(grant.role, Role::Admin);
    assert_eq!(grant.project, None);
    assert_eq!(grant.key_expires_at, None);
    assert_eq!(grant.refresh_at, Some(at("2025-01-02T00:10:00Z")));
    assert_eq!(
        grant.actor,
        Actor::Person {
            id: first.id.to_string(),
            name: "Jane Doe".into()
        }
    );

    // A refresh sets the role and the next look, for this person's session in its
    // workspace only.
    let read = SessionHolder::Person {
        id: first.id,
        role: Role::Read,
        refresh_at: at("2025-01-02T00:20:00Z"),
    };
    let elsewhere = WorkspaceId::from_uuid(Uuid::from_u128(0xee));
    assert!(
        !store
            .refresh_session(&admin.hash(), read.clone(), elsewhere)
            .await
            .unwrap()
    );
    let stranger = SessionHolder::Person {
        id: other.id,
        role: Role::Read,
        refresh_at: at("2025-01-02T00:20:00Z"),
    };
    assert!(
        !store
            .refresh_session(&admin.hash(), stranger, t.workspace)
            .await
            .unwrap()
    );
    assert_eq!(
        store.session(&admin.hash()).await.unwrap().unwrap().role,
        Role::Admin
    );
    assert!(
        store
            .refresh_session(&admin.hash(), read, t.workspace)
            .await
            .unwrap()
    );
    let grant = store.session(&admin.hash()).await.unwrap().unwrap();
    assert_eq!(grant.role, Role::Read);
    assert_eq!(grant.refresh_at, Some(at("2025-01-02T00:20:00Z")));

    // A person keeps their newest sessions only.
    let mut opened = Vec::new();
    for n in 2..5u8 {
        let (secret, record) = open_session(n, Role::Read);
        store.create_session(record, 3).await.unwrap();
        opened.push(secret);
    }
    assert!(
        store.session(&admin.hash()).await.unwrap().is_none(),
        "the oldest ended"
    );
    for secret in &opened {
        assert!(store.session(&secret.hash()).await.unwrap().is_some());
    }
}

async fn integrations_keep_their_secrets_and_their_newest_deliveries(url: &str) {
    use shiplog_app::ids::{IntegrationId, ReceivedId};
    use shiplog_app::integrations::{IntegrationRecord, ReceivedDelivery};
    use shiplog_app::ports::IntegrationStore;
    use shiplog_domain::integration::{IntegrationProvider, Verdict};
    use shiplog_domain::key::SigningSecret;

    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let other = tenant(&store, "globex", 2).await;
    let id = IntegrationId::from_uuid(Uuid::from_u128(0x1a));
    let record = IntegrationRecord {
        id,
        workspace: t.workspace,
        project: Some(t.project),
        provider: IntegrationProvider::Github,
        name: "GitHub".into(),
        settings: serde_json::json!({"deploy_workflows": {"Deploy": "production"}}),
        secret: SigningSecret::from_stored("first-secret".into()),
        previous_secret: None,
        previous_until: None,
        created_at: at("2025-01-01T00:00:00Z"),
        rotated_at: None,
    };
    store.create_integration(record.clone()).await.unwrap();
    assert_eq!(
        store.integration(t.workspace, id).await.unwrap(),
        Some(record.clone())
    );
    // Another workspace neither sees nor changes it.
    assert_eq!(store.integration(other.workspace, id).await.unwrap(), None);
    assert!(
        store
            .integrations(other.workspace)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.delete_integration(other.workspace, id).await.unwrap());
    // A rotation keeps the previous secret beside the new one.
    let rotated = IntegrationRecord {
        secret: SigningSecret::from_stored("second-secret".into()),
        previous_secret: Some(SigningSecret::from_stored("first-secret".into())),
        previous_until: Some(at("2025-01-02T00:00:00Z")),
        rotated_at: Some(at("2025-01-01T00:00:00Z")),
        ..record.clone()
    };
    assert!(store.update_integration(rotated.clone()).await.unwrap());
    assert_eq!(
        store.integrations(t.workspace).await.unwrap(),
        vec![rotated]
    );
    // The log keeps the newest `keep`, newest first.
    for n in 0..5u128 {
        store
            .record_received(
                ReceivedDelivery {
                    id: ReceivedId::from_uuid(Uuid::from_u128(0x100 + n)),
                    integration: id,
                    workspace: t.workspace,
                    received_at: at("2025-01-01T00:00:00Z"),
                    event: Some(format!("event-{n}")),
                    delivery: None,
                    verdict: Verdict::Ignored,
                    reason: "not a deploy".into(),
                },
                3,
            )
            .await
            .unwrap();
    }
    let log = store.received(t.workspace, id, 100).await.unwrap();
    let events: Vec<&str> = log.iter().filter_map(|d| d.event.as_deref()).collect();
    assert_eq!(events, ["event-4", "event-3", "event-2"]);
    assert!(
        store
            .received(other.workspace, id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting it deletes its log.
    assert!(store.delete_integration(t.workspace, id).await.unwrap());
    assert_eq!(store.integration(t.workspace, id).await.unwrap(), None);
    assert!(
        store
            .received(t.workspace, id, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Deleting a workspace removes everything it holds and nothing of another: on PostgreSQL a
/// deployment, an event and a request row reach their workspace only through their application
/// or project (migration 000016 dropped their keys to the workspace), and still go with it.
async fn deleting_a_workspace_removes_what_it_holds(url: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    fn count(conn: &mut shiplog_store::conn::DbConn, sql: &str) -> i64 {
        let row: Count = match conn {
            shiplog_store::conn::DbConn::Sqlite(c) => diesel::sql_query(sql).get_result(c),
            shiplog_store::conn::DbConn::Postgresql(c) => diesel::sql_query(sql).get_result(c),
        }
        .unwrap();
        row.n
    }

    let store = open(url);
    let gone = tenant(&store, "gone", 1).await;
    let kept = tenant(&store, "kept", 2).await;
    let app = app(&store);
    for t in [&gone, &kept] {
        app.ingest(
            &t.admin,
            deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1"),
        )
        .await
        .unwrap();
    }
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    conn.batch_execute(&format!(
        "DELETE FROM workspaces WHERE id = '{}'",
        gone.workspace
    ))
    .unwrap();
    for (t, expected) in [(&gone, 0), (&kept, 1)] {
        for table in [
            "projects",
            "applications",
            "environments",
            "deployments",
            "pipeline_events",
            "commit_sightings",
        ] {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE workspace_id = '{}'",
                t.workspace
            );
            assert_eq!(
                count(&mut conn, &sql),
                expected,
                "{table} of {}",
                t.workspace
            );
        }
        // Both references of its deployment ("#PR-1", "#PR-2").
        let sql = format!(
            "SELECT COUNT(*) AS n FROM change_references WHERE workspace_id = '{}'",
            t.workspace
        );
        assert_eq!(count(&mut conn, &sql), 2 * expected, "change_references");
    }
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) AS n FROM deployment_references"),
        2
    );
    // The day of the kept workspace's deployment, nothing of the other's.
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM dora_days"), 1);
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM dora_days \
             WHERE environment_id NOT IN (SELECT id FROM environments)"
        ),
        0
    );
}

/// A DORA query reads a packed day instead of its deployments, and a change to a deployment of
/// a packed day makes the day's deployments count again until it is packed again.
async fn a_dora_query_reads_packed_days(url: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use shiplog_app::metrics::DoraRequest;

    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = diesel::sql_types::SmallInt)]
        state: i16,
    }
    fn day_state(conn: &mut shiplog_store::conn::DbConn) -> Vec<i16> {
        let sql = "SELECT state FROM dora_days ORDER BY day";
        let rows: Vec<State> = match conn {
            shiplog_store::conn::DbConn::Sqlite(c) => diesel::sql_query(sql).load(c),
            shiplog_store::conn::DbConn::Postgresql(c) => diesel::sql_query(sql).load(c),
        }
        .unwrap();
        rows.into_iter().map(|r| r.state).collect()
    }

    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let finished = |run: &str, at_: &str| {
        let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), run);
        command.finished_at = Some(at(at_));
        command
    };
    let request = DoraRequest {
        from: Some(at("2024-12-01T00:00:00Z")),
        to: Some(at("2024-12-31T00:00:00Z")),
        ..DoraRequest::default()
    };
    let deployments = |app: shiplog_app::App, request: DoraRequest| {
        let admin = t.admin.clone();
        async move {
            app.dora(&admin, request)
                .await
                .map(|view| view.report.change_failure_rate.samples)
        }
    };
    app.ingest(&t.admin, finished("1", "2024-12-10T10:00:00Z"))
        .await
        .unwrap();
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    assert_eq!(day_state(&mut conn), [0], "a stale day to pack");
    assert_eq!(deployments(app.clone(), request.clone()).await.unwrap(), 1);

    // Not packed before the day has been over for an hour.
    let early = store
        .pack_dora_days(at("2024-12-11T00:30:00Z"), usize::MAX)
        .await
        .unwrap();
    assert_eq!((early.packed, early.waiting), (0, 0));
    assert_eq!(
        support::pack_all(&store, at("2025-01-01T00:00:00Z")).await,
        1
    );
    assert_eq!(day_state(&mut conn), [2]);
    assert_eq!(deployments(app.clone(), request.clone()).await.unwrap(), 1);

    // The query reads the packed row: a packing of an unknown format fails it.
    conn.batch_execute(if url.starts_with("postgres") {
        "UPDATE dora_days SET records = '\\x09'::bytea"
    } else {
        "UPDATE dora_days SET records = x'09'"
    })
    .unwrap();
    let refused = deployments(app.clone(), request.clone()).await;
    assert!(refused.is_err(), "read the packed day: {refused:?}");

    // Another deployment of that day: the day is stale and read from its deployments.
    app.ingest(&t.admin, finished("2", "2024-12-10T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(day_state(&mut conn), [0]);
    assert_eq!(deployments(app.clone(), request.clone()).await.unwrap(), 2);
    assert_eq!(
        support::pack_all(&store, at("2025-01-01T00:00:00Z")).await,
        1
    );
    assert_eq!(deployments(app.clone(), request).await.unwrap(), 2);
}

/// The triggers leave a deployment of the current day (by the database's clock) alone, and the
/// packer finds the days it has not looked through yet.
async fn the_packer_finds_days_the_triggers_leave_alone(url: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    fn days(conn: &mut shiplog_store::conn::DbConn) -> i64 {
        let sql = "SELECT COUNT(*) AS n FROM dora_days";
        let row: Count = match conn {
            shiplog_store::conn::DbConn::Sqlite(c) => diesel::sql_query(sql).get_result(c),
            shiplog_store::conn::DbConn::Postgresql(c) => diesel::sql_query(sql).get_result(c),
        }
        .unwrap();
        row.n
    }
    fn wall_clock() -> shiplog_domain::timestamp::Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        shiplog_domain::timestamp::Timestamp::from_unix_micros(i64::try_from(micros).unwrap())
            .unwrap()
    }
    const DAY: i64 = 86_400_000_000;

    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    let started = wall_clock();
    let app = support::app_at(&store, started);
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    let mut today = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "today");
    today.finished_at = Some(started);
    app.ingest(&t.admin, today).await.unwrap();
    // (A run across midnight UTC would see the deployment's day already over.)
    if wall_clock().unix_micros() / DAY == started.unix_micros() / DAY {
        assert_eq!(
            days(&mut conn),
            0,
            "a deployment of the current day fires no trigger"
        );
    }
    let mut old = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "old");
    old.finished_at = Some(at("2024-12-10T10:00:00Z"));
    app.ingest(&t.admin, old).await.unwrap();
    assert_eq!(days(&mut conn), 1, "one of an earlier day does");

    // Days the packer has not looked through yet: it finds them (and only the old one is over).
    let first = at("2024-12-01T00:00:00Z").unix_micros() / DAY;
    conn.batch_execute(&format!(
        "DELETE FROM dora_days; \
         UPDATE instance_settings SET value = '{first}' WHERE name = 'dora_days_scanned'"
    ))
    .unwrap();
    assert_eq!(
        support::pack_all(&store, at("2025-01-01T00:00:00Z")).await,
        1
    );
    assert_eq!(days(&mut conn), 1);
    let request = shiplog_app::metrics::DoraRequest {
        from: Some(at("2024-12-01T00:00:00Z")),
        to: Some(at("2024-12-31T00:00:00Z")),
        ..shiplog_app::metrics::DoraRequest::default()
    };
    let view = app.dora(&t.admin, request).await.unwrap();
    assert_eq!(view.report.change_failure_rate.samples, 1);
}

/// The live feeds' shared change source: which workspaces recorded events since a position,
/// each once, and a skip ahead past the limit.
async fn the_change_source_names_the_workspaces_that_recorded_events(url: &str) {
    use shiplog_app::ports::{DeploymentStore, EventChanges};
    let store = open(url);
    let a = tenant(&store, "acme", 1).await;
    let b = tenant(&store, "globex", 2).await;
    let app = app(&store);
    let start = store.changes_after(None, 100).await.unwrap();
    assert!(start.workspaces.is_empty() && start.complete);
    let quiet = store
        .changes_after(Some(start.position), 100)
        .await
        .unwrap();
    assert_eq!(
        quiet,
        EventChanges {
            position: start.position,
            workspaces: Vec::new(),
            complete: true
        }
    );
    app.ingest(&a.admin, exclusive("k1", "success", "2025-01-01T10:15:00Z"))
        .await
        .unwrap();
    let one = store
        .changes_after(Some(start.position), 100)
        .await
        .unwrap();
    assert_eq!(one.workspaces, vec![a.workspace]);
    assert!(one.complete && one.position > start.position);
    for key in ["k2", "k3"] {
        app.ingest(&b.admin, exclusive(key, "success", "2025-01-01T10:15:00Z"))
            .await
            .unwrap();
    }
    let two = store.changes_after(Some(one.position), 100).await.unwrap();
    assert_eq!(two.workspaces, vec![b.workspace], "each workspace once");
    assert_eq!(
        store.changes_after(None, 100).await.unwrap().position,
        two.position
    );
    let capped = store.changes_after(Some(one.position), 2).await.unwrap();
    assert!(!capped.complete, "more than the limit");
    assert_eq!(capped.position, two.position, "skipped ahead to the newest");
}

/// Every table an ingest writes, as lines of text sorted (each column cast to text, `-` for
/// NULL), for comparing two databases of one backend.
fn dump(url: &str) -> Vec<String> {
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }

    let tables: [(&str, &[&str]); 8] = [
        (
            "deployments",
            &[
                "id",
                "workspace_id",
                "project_id",
                "application_id",
                "environment_id",
                "idempotency_key",
                "payload_fingerprint",
                "status",
                "provider",
                "provider_status",
                "status_at",
                "started_at",
                "finished_at",
                "deployed_at",
                "external_id",
                "commit_sha",
                "commit_message",
                "commit_timestamp",
                "git_ref",
                "branch",
                "run_url",
                "deployed_by",
                "build_number",
                "image",
                "logs_url",
                "created_at",
                "updated_at",
                "commit_seen_at",
                "rework",
            ],
        ),
        (
            "pipeline_events",
            &[
                "id",
                "workspace_id",
                "project_id",
                "application_id",
                "environment_id",
                "deployment_id",
                "event",
                "provider",
                "provider_status",
                "status",
                "commit_sha",
                "occurred_at",
                "received_at",
                "fingerprint",
            ],
        ),
        (
            "deployment_references",
            &[
                "deployment_id",
                "ref_key",
                "project_id",
                "closing",
                "position",
            ],
        ),
        (
            "change_references",
            &[
                "project_id",
                "ref_key",
                "workspace_id",
                "status",
                "deployed_at",
                "deployed_environment_id",
                "created_at",
            ],
        ),
        (
            "commit_sightings",
            &[
                "workspace_id",
                "commit_sha",
                "first_at",
                "first_deployment_id",
                "other_at",
            ],
        ),
        ("dora_days", &["environment_id", "day", "state", "version"]),
        (
            "applications",
            &["id", "project_id", "code", "name", "repo"],
        ),
        (
            "environments",
            &["id", "workspace_id", "code", "name", "kind", "position"],
        ),
    ];
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    let mut lines = Vec::new();
    for (table, columns) in tables {
        let line = columns
            .iter()
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let mut rows: Vec<String> =
            diesel::sql_query(format!("SELECT '{table}|' || {line} AS line FROM {table}"))
                .load::<Line>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|l| l.line)
                .collect();
        assert!(
            !rows.is_empty(),
            "{table} is empty: the history must write it"
        );
        rows.sort();
        lines.extend(rows);
    }
    lines
}

/// A batch written by `ingest_many`, which writes the plans that depend on nothing before them
/// set-wise, leaves every table exactly as the same plans applied one by one (`ingest`, the live
/// path) leave a second database, and answers each plan alike. The history mixes what the set-wise
/// write takes (new deployments, references shared between them, a request deployed by the
/// earlier of two successes that arrive newest first) with what it must leave to the plan-by-plan
/// path: a key, a fingerprint and a commit repeated within the batch, a key, a fingerprint and a
/// commit stored before it, a commit a merged change request named, a deployment without a
/// commit.
async fn set_wise_batches_write_what_plan_by_plan_writes(url: &str) {
    use shiplog_app::import::{ImportLine, ImportOutcome, ImportRecord};
    use shiplog_app::ports::DeploymentStore;
    use shiplog_domain::ids::CommitSha;
    use shiplog_domain::reference::ReferenceKey;

    let other = if url.starts_with("postgres") {
        shiplog_store::testdb::TestDb::postgres().unwrap()
    } else {
        shiplog_store::testdb::TestDb::sqlite()
    };
    let (set_wise, one_by_one) = (open(url), open(other.url()));
    let t = tenant(&set_wise, "acme", 1).await;
    tenant(&one_by_one, "acme", 1).await;
    let app = app(&set_wise);

    let record =
        |app_code: &str, environment: &str, status: &str, minute: i64, sha: Option<&str>| {
            let started = at("2024-03-01T10:00:00Z").unix_micros() + minute * 60_000_000;
            let time =
                |micros| shiplog_domain::timestamp::Timestamp::from_unix_micros(micros).unwrap();
            ImportRecord {
                project: Some("web".to_owned()),
                application: Some(app_code.to_owned()),
                environment: Some(environment.to_owned()),
                status: Some(status.to_owned()),
                provider: Some("github".to_owned()),
                started_at: Some(time(started)),
                finished_at: Some(time(started + 240_000_000)),
                commit_sha: sha.map(str::to_owned),
                commit_timestamp: sha.map(|_| time(started - 3_600_000_000)),
                git_ref: Some("refs/heads/main".to_owned()),
                commit_message: Some(format!("Change at {minute}, fixes #PR-{}", minute / 100)),
                url: Some(format!("https://ci.example/runs/{minute}")),
                external_id: Some(format!("run-{minute}")),
                ..ImportRecord::default()
            }
        };
    let plan = |records: Vec<ImportRecord>| {
        let app = &app;
        let admin = t.admin.clone();
        async move {
            let lines: Vec<ImportLine> = records
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i as u64 + 1, Ok(r)))
                .collect();
            let mut outcome = ImportOutcome::default();
            let planned = app.plan_import(&admin, lines, &mut outcome).await.unwrap();
            assert_eq!(outcome.rejected_count, 0, "{:?}", outcome.rejected);
            planned.plans().to_vec()
        }
    };

    // Stored before the batch, in both databases.
    let before = plan(vec![
        record("api", "production", "success", 10_000, Some("aaaa0001")),
        record("api", "staging", "success", 10_100, Some("aaaa0002")),
    ])
    .await;
    for store in [&set_wise, &one_by_one] {
        for p in &before {
            store.ingest(p.clone()).await.unwrap();
        }
        // A merged change request named commit bbbb0009.
        store
            .link_commit_references(
                t.workspace,
                t.project,
                vec![CommitSha::parse("bbbb0009").unwrap()],
                ReferenceKey::parse("PR-77").unwrap(),
                at("2024-03-01T00:00:00Z"),
            )
            .await
            .unwrap();
    }

    let mut records = Vec::new();
    // Independent: two successes of one request, the later one first; a failure of another.
    records.push(record(
        "web",
        "production",
        "success",
        250,
        Some("bbbb0001"),
    ));
    records.push(record("web", "staging", "success", 210, Some("bbbb0002")));
    records.push(record(
        "worker",
        "production",
        "failure",
        320,
        Some("bbbb0003"),
    ));
    // A key twice in the batch: started, then finished.
    let mut started = record("web", "preview", "in_progress", 400, Some("bbbb0004"));
    started.finished_at = None;
    records.push(started);
    // A fingerprint twice: the same record again.
    records.push(record("api", "preview", "success", 500, Some("bbbb0005")));
    records.push(record("api", "preview", "success", 500, Some("bbbb0005")));
    records.push(record("web", "preview", "success", 400, Some("bbbb0004")));
    // A commit twice, to two environments.
    records.push(record(
        "web",
        "production",
        "success",
        600,
        Some("bbbb0006"),
    ));
    records.push(record("web", "staging", "success", 610, Some("bbbb0006")));
    // A key, a fingerprint and a commit stored before the batch.
    records.push(record(
        "api",
        "production",
        "success",
        10_000,
        Some("aaaa0001"),
    ));
    let mut known_key = record("api", "staging", "failure", 10_100, Some("aaaa0002"));
    known_key.finished_at = None;
    records.push(known_key);
    records.push(record(
        "api",
        "production",
        "success",
        700,
        Some("aaaa0002"),
    ));
    // The commit the merged request named; a deployment without a commit.
    records.push(record(
        "worker",
        "staging",
        "success",
        800,
        Some("bbbb0009"),
    ));
    records.push(record("worker", "preview", "success", 900, None));
    // More independent ones, some naming the requests above.
    for minute in (1000..1400).step_by(25) {
        let environment = ["production", "staging", "preview"][(minute / 25 % 3) as usize];
        let sha = format!("cccc{minute:04}");
        records.push(record("search", environment, "success", minute, Some(&sha)));
    }
    let batch = plan(records).await;

    let answers = set_wise.ingest_many(batch.clone()).await.unwrap();
    let mut expected = Vec::new();
    for p in &batch {
        expected.push(one_by_one.ingest(p.clone()).await);
    }
    assert_eq!(answers.len(), expected.len());
    for (i, (got, want)) in answers.iter().zip(&expected).enumerate() {
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "plan {i}'s answer");
    }
    let (got, want) = (dump(url), dump(other.url()));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len());
}

on_both_backends!(
    set_wise_batches_write_what_plan_by_plan_writes,
    the_change_source_names_the_workspaces_that_recorded_events,
    idempotent_reinsert,
    conflicting_reinsert,
    out_of_order_lifecycle,
    pagination_is_stable_under_concurrent_inserts,
    listings_follow_each_deployments_own_time,
    workspaces_are_isolated,
    references_become_deployed_on_success,
    a_refused_event_writes_nothing,
    concurrent_writers_get_their_own_results,
    one_deployment_from_simultaneous_requests_keeps_every_status,
    environments_limits_and_assignments,
    the_board_shows_current_versions_by_deployment_time,
    records_round_trip_and_codes_are_unique,
    the_master_key_is_kept_as_a_replaceable_hash,
    migrations_go_up_down_up,
    projects_share_the_workspace_environments,
    per_project_environments_merge_by_code,
    nul_text_is_refused_alike_on_every_backend,
    a_value_the_database_refuses_is_not_unavailability,
    sessions_act_as_their_key_until_it_is_revoked,
    a_person_is_one_row_per_issuer_and_subject_and_their_sessions_hold_a_role,
    integrations_keep_their_secrets_and_their_newest_deliveries,
    deleting_a_workspace_removes_what_it_holds,
    a_dora_query_reads_packed_days,
    the_packer_finds_days_the_triggers_leave_alone,
);

/// Waits until a backend of `url`'s database waits for a lock, which `task` (what should be
/// waiting) must not finish before: a bounded wait on that condition, polled from a connection
/// of its own.
async fn until_blocked<T>(url: &str, task: &tokio::task::JoinHandle<T>, what: &str) {
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut watcher = diesel::PgConnection::establish(url).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: Waiting = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(&mut watcher)
        .unwrap();
        if waiting.n > 0 {
            return;
        }
        assert!(
            !task.is_finished(),
            "the {what} finished without waiting for the other transaction"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the {what} never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// PostgreSQL only: a change request that another transaction creates while an ingest of a
/// success that deploys it is under way (after the ingest's write statement took its snapshot,
/// before it inserted the request) is still marked deployed. The ingest's single write
/// statement (`ingest::postgres::write_all_pg`) waits for the other transaction on the request's key and
/// then neither inserts the row nor sees it; the follow-up statement marks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_created_by_a_concurrent_transaction_is_still_marked_deployed() {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    let store = open(db.url());
    let (t, app) = support::after_first_deploy(&store).await;

    let mut other = diesel::PgConnection::establish(db.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query(
        "INSERT INTO change_references (project_id, ref_key, workspace_id, status, created_at) \
         VALUES ($1, 'PR-7', $2, 'open', $3)",
    )
    .bind::<Text, _>(t.project.to_string())
    .bind::<Text, _>(t.workspace.to_string())
    .bind::<BigInt, _>(0_i64)
    .execute(&mut other)
    .unwrap();

    let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "second");
    command.fields.commit_message = Some("fix: session fixes #PR-7".into());
    let ingest = tokio::spawn({
        let app = app.clone();
        let admin = t.admin.clone();
        async move { app.ingest(&admin, command).await }
    });

    // The ingest's statement waits for `other` on the request's key.
    until_blocked(db.url(), &ingest, "ingest").await;
    diesel::sql_query("COMMIT").execute(&mut other).unwrap();

    ingest.await.unwrap().unwrap();
    let request = app
        .get_reference(&t.admin, ProjectSlug::parse("web").unwrap(), "PR-7")
        .await
        .unwrap();
    assert_eq!(request.status, ReferenceStatus::Deployed);
    assert_eq!(
        request.deployed_to.as_ref().map(EnvironmentCode::as_str),
        Some("production")
    );
}

/// PostgreSQL only: a commit that a concurrent transaction sees first while an import batch that
/// deploys it is being written (after the batch read that nobody had seen it, before it inserted
/// the commit's sighting) is folded in as any event is: the batch waits for the other transaction
/// on the commit's key, then neither fails nor overwrites it, and the imported deployment's lead
/// time starts at the other event, the first one that is not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_commit_seen_first_by_a_concurrent_transaction_is_folded_in() {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Nullable, Text};
    use shiplog_app::import::{ImportLine, ImportOutcome, ImportRecord};

    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    let store = open(db.url());
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let seen_at = at("2024-05-01T09:00:00Z");

    let mut other = diesel::PgConnection::establish(db.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    // A build event of the commit, of no deployment, an hour before the import's deploy.
    diesel::sql_query(
        "INSERT INTO commit_sightings (workspace_id, commit_sha, first_at) VALUES ($1, 'dddd0001', $2)",
    )
    .bind::<Text, _>(t.workspace.to_string())
    .bind::<BigInt, _>(seen_at.unix_micros())
    .execute(&mut other)
    .unwrap();

    let record = ImportRecord {
        project: Some("web".to_owned()),
        application: Some("api".to_owned()),
        environment: Some("production".to_owned()),
        status: Some("success".to_owned()),
        started_at: Some(at("2024-05-01T10:00:00Z")),
        finished_at: Some(at("2024-05-01T10:05:00Z")),
        commit_sha: Some("dddd0001".to_owned()),
        external_id: Some("run-1".to_owned()),
        ..ImportRecord::default()
    };
    let lines: Vec<ImportLine> = vec![(1, Ok(record))];
    let mut outcome = ImportOutcome::default();
    let planned = app
        .plan_import(&t.admin, lines, &mut outcome)
        .await
        .unwrap();
    let import = tokio::spawn({
        let app = app.clone();
        let admin = t.admin.clone();
        async move { app.write_import(&admin, planned).await }
    });

    // The batch's insert of the commit's sighting waits for `other` on the commit's key.
    until_blocked(db.url(), &import, "import").await;
    diesel::sql_query("COMMIT").execute(&mut other).unwrap();

    let outcome = import.await.unwrap().unwrap();
    assert_eq!((outcome.accepted, outcome.rejected_count), (1, 0));
    #[derive(QueryableByName)]
    struct Started {
        #[diesel(sql_type = Nullable<BigInt>)]
        commit_seen_at: Option<i64>,
        #[diesel(sql_type = BigInt)]
        first_at: i64,
        #[diesel(sql_type = Nullable<Text>)]
        first_deployment_id: Option<String>,
        #[diesel(sql_type = Text)]
        id: String,
    }
    let started: Started = diesel::sql_query(
        "SELECT d.commit_seen_at, s.first_at, s.first_deployment_id, d.id FROM deployments d \
         JOIN commit_sightings s ON s.workspace_id = d.workspace_id AND s.commit_sha = d.commit_sha",
    )
    .get_result(&mut other)
    .unwrap();
    assert_eq!(started.commit_seen_at, Some(seen_at.unix_micros()));
    assert_eq!(started.first_at, seen_at.unix_micros());
    assert_eq!(started.first_deployment_id, None, "{}", started.id);
}

/// PostgreSQL only: a day changed by a transaction that was still running when the packer
/// marked the day is not packed until that transaction has ended, and is then packed with its
/// change. (Packed at once, the day would keep the deployment as it was before the change: the
/// change's trigger ran before the mark, so nothing would make the day stale again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_changed_by_a_running_transaction_is_packed_after_it() {
    use diesel::prelude::*;
    use shiplog_app::metrics::DoraRequest;

    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    let store = open(db.url());
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let mut command = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "1");
    command.finished_at = Some(at("2024-12-10T10:00:00Z"));
    app.ingest(&t.admin, command).await.unwrap();
    let failures = || async {
        let request = DoraRequest {
            from: Some(at("2024-12-01T00:00:00Z")),
            to: Some(at("2024-12-31T00:00:00Z")),
            ..DoraRequest::default()
        };
        let view = app.dora(&t.admin, request).await.unwrap();
        view.report.change_failure_rate.failed_deployments
    };
    assert_eq!(failures().await, 0);

    let mut other = diesel::PgConnection::establish(db.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query("UPDATE deployments SET status = 'failed'")
        .execute(&mut other)
        .unwrap();
    let now = at("2025-01-01T00:00:00Z");
    let packing = store.pack_dora_days(now, usize::MAX).await.unwrap();
    assert_eq!(
        (packing.packed, packing.waiting),
        (0, 1),
        "waits for the running transaction"
    );
    diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    assert_eq!(failures().await, 1, "read from the deployments");
    assert_eq!(support::pack_all(&store, now).await, 1);
    assert_eq!(failures().await, 1, "read from the packed day");
}
