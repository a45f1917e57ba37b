//! How many SQL statements one ingest and one authentication cost, on each backend, counted by
//! diesel's connection instrumentation (every statement a connection of this process sends,
//! `BEGIN` and `COMMIT` included). The expected counts are exact, so the count cannot grow unnoticed: a change that
//! adds a statement must change this file too, and say why.
//!
//! Its own test binary: the instrumentation is process-wide.

mod support;

use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::CommitSha;
use shiplog_store::testdb::TestDb;
use shiplog_store::{ExecOptions, Store, StoreOptions};
use support::{app, deploy, tenant};

/// The statements seen while recording (`None`: not recording).
static SEEN: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// The text of every statement a connection of this process put in its statement cache.
static PREPARED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| match event {
        InstrumentationEvent::StartQuery { query, .. } => {
            let sql = query.to_string();
            // A reader that connects during the recording sets its connection up first.
            let setup =
                sql.starts_with("PRAGMA busy_timeout") || sql.starts_with("SET synchronous_commit");
            if let Some(seen) = SEEN.lock().unwrap().as_mut().filter(|_| !setup) {
                seen.push(sql);
            }
        }
        InstrumentationEvent::CacheQuery { sql, .. } => {
            PREPARED.lock().unwrap().push(sql.to_owned())
        }
        _ => {}
    }))
}

/// Every statement but `BEGIN` and `COMMIT` was kept prepared by the connection that ran it
/// (a recorded statement's text is its SQL, then its binds).
fn all_kept_prepared(backend: &str, statements: &[String]) {
    let prepared = PREPARED.lock().unwrap();
    for statement in statements {
        if statement == "BEGIN" || statement == "COMMIT" {
            continue;
        }
        assert!(
            prepared
                .iter()
                .any(|sql| statement.starts_with(sql.as_str())),
            "{backend}: parsed and planned on every run: {statement}"
        );
    }
}

/// The statements `work` made connections of this process send.
async fn statements_of<F: std::future::Future<Output = ()>>(work: F) -> Vec<String> {
    *SEEN.lock().unwrap() = Some(Vec::new());
    work.await;
    SEEN.lock().unwrap().take().unwrap()
}

/// A store with one PostgreSQL writer, so that the measured ingest runs on the thread that
/// already knows the application's and environment's ids (as every writer of a warm pool does).
fn one_writer_store(url: &str) -> Store {
    let options = StoreOptions {
        exec: ExecOptions {
            postgres_writers: 1,
            ..ExecOptions::default()
        },
        ..StoreOptions::default()
    };
    Store::open(url, &options).unwrap()
}

/// One Clienwork-style `deploy.completed` naming two references (one closing) and a commit seen
/// for the first time, for an application and environment that already exist, in a project
/// without hooks. (A commit seen before may cost one more statement: the `UPDATE` that moves the
/// lead-time start of its other deployments, when the event moves it.)
async fn one_ingest(url: &str) -> Vec<String> {
    let store = one_writer_store(url);
    let (t, app) = support::after_first_deploy(&store).await;
    statements_of(async {
        let mut second = deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "second");
        second.fields.commit_sha = Some(CommitSha::parse("fedcba987654").unwrap());
        let receipt = app.ingest(&t.admin, second).await.unwrap();
        assert!(receipt.created);
    })
    .await
}

/// A third deploy of one commit, which moves nobody's lead-time start (the second deploy made
/// the first event's owner's start its own time; the third is later still): no sightings write.
async fn one_repeat_ingest(url: &str) -> Vec<String> {
    let store = one_writer_store(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    for run in ["first", "second"] {
        app.ingest(
            &t.admin,
            deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), run),
        )
        .await
        .unwrap();
    }
    statements_of(async {
        let receipt = app
            .ingest(
                &t.admin,
                deploy(PipelineEvent::DEPLOY_COMPLETED, Some("success"), "third"),
            )
            .await
            .unwrap();
        assert!(receipt.created);
    })
    .await
}

/// One import batch of `records` deployments that depend on nothing before them (new keys,
/// events and commits, each naming a change request), after a first batch created their
/// application and environment.
async fn one_import_batch(url: &str, records: usize) -> Vec<String> {
    use shiplog_app::import::{ImportLine, ImportOutcome, ImportRecord};

    let store = one_writer_store(url);
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let batch = |from: usize, count: usize| -> Vec<ImportLine> {
        (from..from + count)
            .map(|i| {
                let record = ImportRecord {
                    project: Some("web".to_owned()),
                    application: Some("api".to_owned()),
                    environment: Some("production".to_owned()),
                    status: Some("success".to_owned()),
                    started_at: Some(support::at("2024-05-01T10:00:00Z")),
                    finished_at: Some(support::at("2024-05-01T10:05:00Z")),
                    commit_sha: Some(format!("{:012x}", i + 1)),
                    commit_message: Some(format!("Change {i}, fixes #PR-{i}")),
                    external_id: Some(format!("run-{i}")),
                    ..ImportRecord::default()
                };
                (i as u64 + 1, Ok(record))
            })
            .collect()
    };
    let import = |lines: Vec<ImportLine>| {
        let (app, admin) = (&app, t.admin.clone());
        async move {
            let count = lines.len() as u64;
            let mut outcome = ImportOutcome::default();
            let planned = app.plan_import(&admin, lines, &mut outcome).await.unwrap();
            let written = app.write_import(&admin, planned).await.unwrap();
            assert_eq!((written.accepted, written.rejected_count), (count, 0));
        }
    };
    import(batch(0, 1)).await;
    statements_of(import(batch(1, records))).await
}

fn check(backend: &str, statements: &[String], expected: usize) {
    assert_eq!(
        statements.len(),
        expected,
        "{backend}: sent {} statements, expected {expected}:\n{}",
        statements.len(),
        statements.join("\n")
    );
}

/// Authenticating an API key that was used a moment ago: no statement at all (the store's 5 s
/// copy; the first use records `last_used_at` and drops the copy, the second reads it again).
async fn one_authentication(url: &str) -> Vec<String> {
    use shiplog_app::ids::ApiKeyId;
    use shiplog_app::model::ApiKeyRecord;
    use shiplog_app::ports::KeyStore;
    use shiplog_domain::key::{KeyHash, Role};

    let store = Store::open(url, &StoreOptions::default()).unwrap();
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    let secret = "shiplog_statements_test_key";
    KeyStore::create_api_key(
        &store,
        ApiKeyRecord {
            id: ApiKeyId::from_uuid(uuid::Uuid::from_u128(0xcccc)),
            workspace: t.workspace,
            name: "ci".into(),
            role: Role::Ingest,
            project: None,
            hash: KeyHash::of(secret),
            hint: "shiplog_sta".into(),
            created_at: support::at("2025-01-01T00:00:00Z"),
            expires_at: None,
            last_used_at: None,
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        app.authenticate(Some(secret)).await.unwrap();
    }
    statements_of(async {
        let principal = app.authenticate(Some(secret)).await.unwrap();
        assert_eq!(principal.workspace, t.workspace);
    })
    .await
}

/// The reads the API and the dashboard make per page, with `deployments` deployments on the
/// board and in the listing (each naming two references, all carrying `PR-1`): the statements
/// each sends, in a map by read. Their number does not grow with the deployments: a page's
/// references, a board's current versions and a reference's deployments are one query each.
async fn reads(url: &str, deployments: usize) -> Vec<(&'static str, Vec<String>)> {
    use shiplog_app::deployments::ListDeployments;
    use shiplog_app::ingest::ApplicationRef;
    use shiplog_app::model::ProjectLookup;
    use shiplog_domain::ids::{ApplicationCode, ProjectSlug};

    let store = Store::open(url, &StoreOptions::default()).unwrap();
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    for n in 0..deployments {
        let mut command = deploy(
            PipelineEvent::DEPLOY_COMPLETED,
            Some("success"),
            &format!("run-{n}"),
        );
        // One application per deployment: each is a board cell of its own.
        command.application =
            ApplicationRef::Code(ApplicationCode::parse(&format!("app-{n}")).unwrap());
        app.ingest(&t.admin, command).await.unwrap();
    }
    // Warm the project copy, as any request before these would have.
    app.list_deployments(&t.admin, ListDeployments::default())
        .await
        .unwrap();
    let web = ProjectSlug::parse("web").unwrap();
    let list = statements_of(async {
        let page = app
            .list_deployments(&t.admin, ListDeployments::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), deployments);
        assert!(page.items.iter().all(|d| d.references.len() == 2));
    })
    .await;
    let board = statements_of(async {
        let board = app
            .environment_board(&t.admin, ProjectLookup::Slug(web.clone()))
            .await
            .unwrap();
        assert_eq!(board.len(), 1);
    })
    .await;
    let reference = statements_of(async {
        let view = app
            .get_reference(&t.admin, web.clone(), "PR-1")
            .await
            .unwrap();
        assert_eq!(view.deployments.len(), deployments);
    })
    .await;
    vec![("list", list), ("board", board), ("reference", reference)]
}

/// Claiming the due deliveries of `deployments` deployments (one hook, one delivery each): the
/// statements the claim sends, which must not grow with the deliveries claimed.
async fn claim(url: &str, deployments: usize) -> Vec<(&'static str, Vec<String>)> {
    use shiplog_app::hooks::{DeliveryClaim, HookInput};
    use shiplog_app::model::ProjectLookup;
    use shiplog_app::ports::HookStore;
    use shiplog_domain::ids::ProjectSlug;

    let store = Store::open(url, &StoreOptions::default()).unwrap();
    let t = tenant(&store, "acme", 1).await;
    let app = app(&store);
    app.create_hook(
        &t.admin,
        ProjectLookup::Slug(ProjectSlug::parse("web").unwrap()),
        HookInput {
            name: "ci".into(),
            events: vec!["deployment.succeeded".into()],
            target_url: Some("https://hooks.example/{{ deployment.id }}".into()),
            ..HookInput::default()
        },
    )
    .await
    .unwrap();
    for n in 0..deployments {
        let command = deploy(
            PipelineEvent::DEPLOY_COMPLETED,
            Some("success"),
            &format!("run-{n}"),
        );
        app.ingest(&t.admin, command).await.unwrap();
    }
    let statements = statements_of(async {
        let claimed = HookStore::claim_deliveries(
            &store,
            DeliveryClaim {
                owner: "worker".into(),
                now: support::at("2030-01-01T00:00:00Z"),
                lease_until: support::at("2030-01-01T00:01:00Z"),
                limit: 100,
                per_workspace: 100,
            },
        )
        .await
        .unwrap();
        assert_eq!(claimed.len(), deployments);
    })
    .await;
    vec![("claim", statements)]
}

fn check_reads(backend: &str, few: &[(&str, Vec<String>)], many: &[(&str, Vec<String>)]) {
    for ((read, few), (_, many)) in few.iter().zip(many) {
        assert_eq!(
            few.len(),
            many.len(),
            "{backend} {read}: {} statements for 2 deployments, {} for 12:\n{}",
            few.len(),
            many.len(),
            many.join("\n")
        );
    }
}

/// The reads and the claim with 2 and with 12 deployments, each on a fresh database of one
/// backend (none: the backend is not on this machine, which `TestDb` reports).
async fn check_scaling(backend: &str, fresh: fn() -> Option<TestDb>) {
    let Some([a, b, c, d]) = (|| Some([fresh()?, fresh()?, fresh()?, fresh()?]))() else {
        return;
    };
    check_reads(backend, &reads(a.url(), 2).await, &reads(b.url(), 12).await);
    check_reads(backend, &claim(c.url(), 2).await, &claim(d.url(), 12).await);
}

/// One test for both backends: the recording is process-wide, so they must not overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ingest_costs_a_known_number_of_statements() {
    set_default_instrumentation(recorder).unwrap();
    let db = shiplog_store::testdb::TestDb::sqlite();
    // BEGIN, the lookup, the commit's sightings, the deployment, its references, the change
    // references, marking the closed one deployed, the event, COMMIT. (No hooks query: the
    // lookup found that the project has no hook. No savepoint: the writer runs a batch's jobs
    // in savepoints only when one of them failed, see `exec`.)
    check("sqlite", &one_ingest(db.url()).await, 9);
    // The same without the sightings statement: nothing to fold.
    let db = TestDb::sqlite();
    check("sqlite repeat", &one_repeat_ingest(db.url()).await, 8);
    let db = shiplog_store::testdb::TestDb::sqlite();
    check(
        "sqlite authentication",
        &one_authentication(db.url()).await,
        0,
    );
    check_scaling("sqlite", || Some(TestDb::sqlite())).await;
    if let Some(db) = shiplog_store::testdb::TestDb::postgres() {
        let statements = one_ingest(db.url()).await;
        // BEGIN, the lookup, the commit's sightings, one statement for the deployment, its
        // references, the change references and the event (`ingest::postgres::write_all_pg`), COMMIT.
        check("postgres", &statements, 5);
        // PostgreSQL parses and plans a statement diesel does not keep on every run (the raw
        // lookup planned that way was a tenth of the server's time under `bench http`).
        all_kept_prepared("postgres", &statements);
    }
    // The upsert becomes a read under a shared lock: the same count, no exclusive lock.
    if let Some(db) = TestDb::postgres() {
        let statements = one_repeat_ingest(db.url()).await;
        check("postgres repeat", &statements, 5);
        all_kept_prepared("postgres repeat", &statements);
        assert!(
            statements.iter().any(|s| s.contains("FOR SHARE")),
            "the commit's row is read under a shared lock"
        );
        assert!(
            !statements
                .iter()
                .any(|s| s.contains("INSERT INTO commit_sightings"))
        );
    }
    check_scaling("postgres", TestDb::postgres).await;
    check_import_batches().await;
    if let Some(db) = shiplog_store::testdb::TestDb::postgres() {
        check(
            "postgres authentication",
            &one_authentication(db.url()).await,
            0,
        );
    }
}

/// An import batch costs the same statements whatever its size: BEGIN, four reads (the
/// batch's fingerprints, keys, commits' sightings, and commits named by merged requests), one
/// insert each of sightings, deployments, references and request rows, the update that marks
/// the closed requests deployed (on SQLite, where a statement is a function call, one prepared
/// update per request), the events' insert, COMMIT.
async fn check_import_batches() {
    let (few, many) = (
        one_import_batch(TestDb::sqlite().url(), 3).await,
        one_import_batch(TestDb::sqlite().url(), 40).await,
    );
    check("sqlite import of 3", &few, 11 + 3);
    check("sqlite import of 40", &many, 11 + 40);
    let Some([a, b]) = (|| Some([TestDb::postgres()?, TestDb::postgres()?]))() else {
        return;
    };
    let (few, many) = (
        one_import_batch(a.url(), 3).await,
        one_import_batch(b.url(), 40).await,
    );
    check("postgres import of 3", &few, 12);
    check("postgres import of 40", &many, 12);
}
