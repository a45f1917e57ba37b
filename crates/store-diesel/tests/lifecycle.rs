//! Deletions and retention, on both backends: what a deletion names goes with what belongs to
//! it and nothing of another workspace; DORA afterwards equals DORA over a history that never
//! had it (packed days included); retention removes old rows in batches and leaves the
//! deployments, the new rows and DORA alone; each deletion leaves its audit entry.

use crate::support::{self, app_at, at, deploy, open, tenant};

use shiplog_app::App;
use shiplog_app::audit::{Actor, AuditAction};
use shiplog_app::ingest::{ApplicationRef, EnvironmentRef, IngestCommand};
use shiplog_app::lifecycle::Retention;
use shiplog_app::metrics::DoraRequest;
use shiplog_app::ports::LifecycleStore;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{ApplicationCode, CommitSha};
use shiplog_domain::timestamp::Timestamp;
use shiplog_store::DatabaseUrl;

/// A finished deployment of `application` to `environment`, run `run`, finished at `finished`.
fn deployment(
    application: &str,
    environment: &str,
    run: &str,
    finished: &str,
    ok: bool,
) -> IngestCommand {
    let mut command = deploy(
        PipelineEvent::DEPLOY_COMPLETED,
        Some(if ok { "success" } else { "failure" }),
        run,
    );
    command.application = ApplicationRef::Code(ApplicationCode::parse(application).unwrap());
    command.environment = Some(EnvironmentRef {
        name: environment.to_owned(),
        create_if_missing: true,
        kind: None,
    });
    let earlier = |minutes: i64| {
        Timestamp::from_unix_micros(at(finished).unix_micros() - minutes * 60_000_000).unwrap()
    };
    command.started_at = Some(earlier(5));
    command.finished_at = Some(at(finished));
    command.fields.commit_sha = Some(CommitSha::parse(&format!("c0ffee{:0>6}", hex(run))).unwrap());
    command.fields.commit_timestamp = Some(earlier(180));
    command
}

/// A run name as hex digits (commit shas are hex).
fn hex(run: &str) -> String {
    run.bytes().map(|b| format!("{:x}", b % 16)).collect()
}

/// The history both tenants share: two applications, production and staging, over a week.
fn shared() -> Vec<IngestCommand> {
    history(3)
}

/// That history in `month` of 2025.
fn history(month: u8) -> Vec<IngestCommand> {
    let mut history = Vec::new();
    for day in 1..=7 {
        for (app, env) in [
            ("api", "production"),
            ("web", "production"),
            ("api", "staging"),
        ] {
            let run = format!("{day}{}{}", &app[..1], &env[..1]);
            history.push(deployment(
                app,
                env,
                &run,
                &format!("2025-{month:02}-0{day}T1{day}:00:00Z"),
                day % 3 != 0,
            ));
        }
    }
    history
}

fn count(conn: &mut shiplog_store::conn::DbConn, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: Count = match conn {
        shiplog_store::conn::DbConn::Sqlite(c) => diesel::sql_query(sql).get_result(c),
        shiplog_store::conn::DbConn::Postgresql(c) => diesel::sql_query(sql).get_result(c),
    }
    .unwrap();
    row.n
}

/// Rows of the workspace in every table that names one.
fn rows_of(conn: &mut shiplog_store::conn::DbConn, workspace: &str) -> Vec<(&'static str, i64)> {
    [
        "projects",
        "applications",
        "environments",
        "deployments",
        "pipeline_events",
        "change_references",
        "commit_sightings",
        "hooks",
    ]
    .into_iter()
    .map(|table| {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE workspace_id = '{workspace}'");
        (table, count(conn, &sql))
    })
    .collect()
}

async fn dora(
    app: &App,
    t: &support::Tenant,
    environment: Option<&str>,
) -> shiplog_domain::dora::Report {
    app.dora(
        &t.admin,
        DoraRequest {
            from: Some(at("2024-12-20T00:00:00Z")),
            to: Some(at("2025-03-20T00:00:00Z")),
            environment: environment
                .map(|e| shiplog_domain::ids::EnvironmentCode::parse(e).unwrap()),
            ..DoraRequest::default()
        },
    )
    .await
    .unwrap()
    .report
}

async fn deployment_id(app: &App, t: &support::Tenant, run: &str) -> String {
    let page = app
        .list_deployments(
            &t.admin,
            shiplog_app::deployments::ListDeployments {
                limit: Some(200),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    page.items
        .iter()
        .find(|d| d.fields.run_url.as_deref() == Some(&format!("https://ci.example/runs/{run}")))
        .map(|d| d.id.to_string())
        .unwrap()
}

async fn deletions_leave_dora_as_if_the_records_never_were(url: &str) {
    let store = open(url);
    let acme = tenant(&store, "acme", 1).await;
    let mirror = tenant(&store, "mirror", 2).await;
    let other = tenant(&store, "other", 3).await;
    let app = app_at(&store, at("2025-03-10T00:00:00Z"));
    for command in shared() {
        for t in [&acme, &mirror, &other] {
            app.ingest(&t.admin, command.clone()).await.unwrap();
        }
    }
    // What acme alone has, and will delete: one more deployment of api to production, an
    // application with its deployments, an environment with its deployments.
    let extra = [
        deployment("api", "production", "gone1", "2025-03-04T18:00:00Z", false),
        deployment("batch", "production", "gone2", "2025-03-02T09:00:00Z", true),
        deployment(
            "batch",
            "production",
            "gone3",
            "2025-03-05T09:00:00Z",
            false,
        ),
        deployment("api", "preview", "gone4", "2025-03-03T09:00:00Z", true),
        deployment("web", "preview", "gone5", "2025-03-06T09:00:00Z", false),
    ];
    for command in extra {
        app.ingest(&acme.admin, command).await.unwrap();
    }
    // Days packed before the deletions: they must be packed again.
    support::pack_all(&store, at("2025-03-20T00:00:00Z")).await;
    assert_ne!(
        dora(&app, &acme, None).await,
        dora(&app, &mirror, None).await
    );
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    let others_before = rows_of(&mut conn, &other.workspace.to_string());

    let gone1 = deployment_id(&app, &acme, "gone1").await;
    // Another workspace's admin cannot delete it: "not found", and it stays.
    let refused = app
        .delete_deployment(&other.admin, &gone1)
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "deployment_not_found");
    app.delete_deployment(&acme.admin, &gone1).await.unwrap();
    assert_eq!(
        app.delete_deployment(&acme.admin, &gone1)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "deployment_not_found",
        "deleted once"
    );
    let batch = app
        .list_applications(
            &acme.admin,
            shiplog_app::model::ProjectLookup::parse("web").unwrap(),
        )
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.code.as_str() == "batch")
        .unwrap();
    app.delete_application(&acme.admin, &batch.id.to_string())
        .await
        .unwrap();
    app.delete_environment(&acme.admin, "preview")
        .await
        .unwrap();
    assert_eq!(
        app.delete_environment(&acme.admin, "preview")
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "environment_not_found"
    );

    // DORA equals the mirror's, before and after packing again, per environment too.
    for _ in 0..2 {
        assert_eq!(
            dora(&app, &acme, None).await,
            dora(&app, &mirror, None).await
        );
        for env in ["production", "staging"] {
            assert_eq!(
                dora(&app, &acme, Some(env)).await,
                dora(&app, &mirror, Some(env)).await,
                "{env}"
            );
        }
        support::pack_all(&store, at("2025-03-20T00:00:00Z")).await;
    }
    assert_eq!(
        support::count_deployments(&app, &acme.admin).await,
        shared().len()
    );
    assert_eq!(
        rows_of(&mut conn, &other.workspace.to_string()),
        others_before
    );
    let ws = acme.workspace.to_string();
    let mirror_rows: Vec<(&str, i64)> = rows_of(&mut conn, &mirror.workspace.to_string());
    let acme_rows = rows_of(&mut conn, &ws);
    for ((table, a), (_, m)) in acme_rows.iter().zip(&mirror_rows) {
        if *table != "commit_sightings" && *table != "change_references" {
            assert_eq!(a, m, "{table}: acme has what the mirror has");
        }
    }

    // Each deletion left its entry, newest first, naming who and what.
    let log = store.audit(Some(acme.workspace), None, 10).await.unwrap();
    let actions: Vec<AuditAction> = log.iter().map(|r| r.entry.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::EnvironmentDeleted,
            AuditAction::ApplicationDeleted,
            AuditAction::DeploymentDeleted
        ]
    );
    assert_eq!(log[0].entry.target.name.as_deref(), Some("preview"));
    assert_eq!(log[1].entry.target.name.as_deref(), Some("batch"));
    assert_eq!(log[2].entry.target.id, gone1);
    assert_eq!(log[2].entry.workspace_code.as_deref(), Some("acme"));
    assert_eq!(log[2].entry.actor, Actor::Master);

    // A project, then the workspace: nothing of acme is left; the others are untouched.
    app.delete_project(&acme.admin, "web").await.unwrap();
    assert!(
        rows_of(&mut conn, &ws)
            .iter()
            .all(|(table, n)| *table == "environments" || *table == "commit_sightings" || *n == 0),
        "{:?}",
        rows_of(&mut conn, &ws)
    );
    store
        .delete(
            acme.workspace,
            shiplog_app::ports::Deletion::Workspace,
            shiplog_app::audit::AuditEntry {
                id: uuid::Uuid::from_u128(77),
                workspace: Some(acme.workspace),
                workspace_code: Some("acme".into()),
                at: at("2025-03-10T00:00:00Z"),
                actor: Actor::Master,
                action: AuditAction::WorkspaceDeleted,
                target: shiplog_app::audit::AuditTarget {
                    kind: "workspace",
                    id: ws.clone(),
                    name: Some("acme".into()),
                },
                address: Some("192.0.2.1".into()),
            },
        )
        .await
        .unwrap();
    assert!(
        rows_of(&mut conn, &ws).iter().all(|(_, n)| *n == 0),
        "{:?}",
        rows_of(&mut conn, &ws)
    );
    assert_eq!(
        rows_of(&mut conn, &other.workspace.to_string()),
        others_before
    );
    assert_eq!(
        dora(&app, &other, None).await,
        dora(&app, &mirror, None).await
    );
    // The workspace's entries outlive it.
    let log = store.audit(Some(acme.workspace), None, 10).await.unwrap();
    assert_eq!(log[0].entry.action, AuditAction::WorkspaceDeleted);
    assert_eq!(log[0].entry.address.as_deref(), Some("192.0.2.1"));
    assert_eq!(log.len(), 5);
}

async fn retention_removes_old_rows_in_batches_and_keeps_deployments(url: &str) {
    let store = open(url);
    let t = tenant(&store, "acme", 1).await;
    // Received long ago (the clock of the ingest), then recently.
    let old = app_at(&store, at("2025-01-10T00:00:00Z"));
    // A hook: each success gets a delivery and its status change (the outbox).
    old.create_hook(
        &t.admin,
        shiplog_app::model::ProjectLookup::parse("web").unwrap(),
        shiplog_app::hooks::HookInput {
            name: "ci".into(),
            events: vec!["deployment.succeeded".into()],
            target_url: Some("https://hooks.example/{{ deployment.id }}".into()),
            ..shiplog_app::hooks::HookInput::default()
        },
    )
    .await
    .unwrap();
    for command in history(1) {
        old.ingest(&t.admin, command).await.unwrap();
    }
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    let deliveries = |conn: &mut shiplog_store::conn::DbConn| {
        (
            count(conn, "SELECT COUNT(*) AS n FROM hook_deliveries"),
            count(conn, "SELECT COUNT(*) AS n FROM outbox_events"),
        )
    };
    assert_eq!(
        deliveries(&mut conn),
        (15, 15),
        "15 successes in the history"
    );
    // The worker sent all but one; a delivery still being retried stays, and its change.
    let sql = "UPDATE hook_deliveries SET status = 'delivered' WHERE seq <> (SELECT MIN(seq) FROM hook_deliveries)";
    match &mut conn {
        shiplog_store::conn::DbConn::Sqlite(c) => {
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), c)
        }
        shiplog_store::conn::DbConn::Postgresql(c) => {
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), c)
        }
    }
    .unwrap();
    let recent = support::app_at_ids(&store, at("2025-03-10T00:00:00Z"), 1_000_000);
    recent
        .ingest(
            &t.admin,
            deployment("api", "production", "new", "2025-03-09T12:00:00Z", true),
        )
        .await
        .unwrap();
    support::pack_all(&store, at("2025-03-20T00:00:00Z")).await;
    let before = dora(&recent, &t, None).await;
    let events = |conn: &mut shiplog_store::conn::DbConn| {
        count(conn, "SELECT COUNT(*) AS n FROM pipeline_events")
    };
    assert_eq!(events(&mut conn), 22);

    // 30 days at 2025-03-10: the January events go, 5 per round, each round its own jobs.
    let retention = Retention {
        days: 30,
        deployment_days: None,
        batch: 5,
    };
    let mut rounds = 0;
    let mut pass = shiplog_app::ports::Pruned::default();
    loop {
        let pruned = recent.prune(retention).await.unwrap();
        rounds += 1;
        assert!(pruned.events <= 5);
        pass = pass.plus(pruned);
        if !pruned.any_full(5) {
            break;
        }
    }
    recent.record_retention(retention, pass).await;
    assert_eq!(
        rounds, 5,
        "21 old events, 5 a round: the fifth finds only one"
    );
    assert_eq!(events(&mut conn), 1, "the recent event stays");
    assert_eq!(
        deliveries(&mut conn),
        (2, 2),
        "the pending old delivery and the recent one stay, with their changes"
    );
    assert_eq!(
        support::count_deployments(&recent, &t.admin).await,
        22,
        "deployments stay"
    );
    assert_eq!(dora(&recent, &t, None).await, before);
    support::pack_all(&store, at("2025-03-20T00:00:00Z")).await;
    assert_eq!(dora(&recent, &t, None).await, before);
    // Retention says what the pass did, once, as the system.
    let log = store.audit(None, None, 50).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].entry.action, AuditAction::RetentionPruned);
    assert_eq!(log[0].entry.actor, Actor::System { name: "retention" });
    assert_eq!(
        log[0].entry.target.name.as_deref(),
        // The hook's creation, two months old, is an audit entry retention removes too.
        Some(
            "21 events, 14 deliveries, 14 status changes, 0 received, 0 sessions, 1 audit entries, 0 deployments"
        )
    );

    // With a deployment retention, deployments finished before the cut-off go too.
    let retention = Retention {
        days: 30,
        deployment_days: Some(65),
        batch: 100,
    };
    let pruned = recent.prune(retention).await.unwrap();
    // Finished before 2025-01-04 (65 days before 2025-03-10): days 1 to 3, three each.
    assert_eq!(pruned.deployments, 9);
    assert_eq!(support::count_deployments(&recent, &t.admin).await, 13);
}

on_both_backends!(
    deletions_leave_dora_as_if_the_records_never_were,
    retention_removes_old_rows_in_batches_and_keeps_deployments,
);
