//! DORA through the store equals the domain's definitions over the same history.
//!
//! The store keeps what a DORA query needs up to date at ingest (each deployment's lead-time
//! start, from `commit_sightings`) instead of recomputing it per query. This property test sends
//! random histories — deployments of two applications sharing three commits, with and without
//! commit timestamps, started and completed events, builds of the commits — in a random arrival
//! order with repeated deliveries, through the ingest use case into a real store on each
//! backend, and checks that `App::dora` answers exactly what `shiplog_domain::dora::History`
//! computes from the definitions written out here: a deployment's commit time is its commit
//! timestamp, else the earliest event of its commit that is not its own; its start is the one
//! its events sent; its rework signal is what its branch, ref and message give with the default
//! hotfix patterns (the migration test checks the SQL backfill of migration 000014 gives the
//! same signals as ingest). Each case also packs the store's DORA days (`Store::pack_dora_days`)
//! at random points of its arrival order, so that later events change packed days, and compares
//! again once every day is packed, over a window from midnight and one that is not. In import
//! mode, some deployments arrive as history through `App::plan_import` and `App::write_import`
//! (in batches of the imports that follow each other in the arrival order), some live, some
//! both: the reports and the number of deployments are still the definitions'.

use crate::support;

use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::{app, at, deploy, open, tenant};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use shiplog_app::App;
use shiplog_app::deployments::ListDeployments;
use shiplog_app::import::{ImportLine, ImportOutcome, ImportRecord};
use shiplog_app::ingest::{ApplicationRef, IngestCommand};
use shiplog_app::metrics::DoraRequest;
use shiplog_app::model::ProjectLookup;
use shiplog_domain::dora::{DeploymentRecord, History, Interval, Outcome, ReworkReason, Window};
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{ApplicationCode, CommitSha};
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

const COMMITS: [&str; 3] = ["c0ffee000001", "c0ffee000002", "c0ffee000003"];
const APPS: [&str; 2] = ["api", "web"];

/// What a deployment may say of itself: branch, ref, commit message, and the rework signal the
/// definitions give them with the default hotfix patterns (`rework_signal`).
type Signal = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<ReworkReason>,
);
const SIGNALS: [Signal; 8] = [
    (None, None, None, None),
    (Some("main"), Some("refs/heads/main"), Some("feat: x"), None),
    (
        Some("hotfix/login"),
        None,
        None,
        Some(ReworkReason::HotfixRef),
    ),
    (
        None,
        Some("refs/heads/hotfix-12"),
        None,
        Some(ReworkReason::HotfixRef),
    ),
    (
        None,
        Some("refs/tags/revert-3"),
        None,
        Some(ReworkReason::HotfixRef),
    ),
    (Some("Hotfix/x"), None, None, None),
    (
        None,
        None,
        Some("Revert \"feat: x\""),
        Some(ReworkReason::Revert),
    ),
    (Some("release"), None, Some("revert: lowercase"), None),
];

/// One deployment: where, which commit, how it ended and when (minutes from the start).
#[derive(Debug, Clone)]
struct Deploy {
    app: usize,
    commit: usize,
    failed: bool,
    finished: i64,
    started: Option<i64>,
    commit_timestamp: Option<i64>,
    /// Which of [`SIGNALS`] it sends.
    signal: usize,
}

/// One event as sent.
#[derive(Debug, Clone, Copy)]
enum Send {
    Started(usize),
    Completed(usize),
    Build(usize),
}

#[derive(Debug, Clone)]
struct Case {
    deploys: Vec<Deploy>,
    builds: Vec<(usize, i64)>,
    order: Vec<Send>,
    /// Before which sends (by position in `order`; its length: after the last) the store packs
    /// its DORA days (`Store::pack_dora_days`), so that later sends change packed days.
    packs: Vec<usize>,
    /// Minutes by which a second window's ends are moved off midnight.
    shift: i64,
    /// Per deployment, in import mode: its completion arrives live (0), as an imported record
    /// (1), or both (2).
    imported: Vec<u8>,
}

/// How a case is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One event at a time.
    InOrder,
    /// All at once, each from its own task.
    AtOnce,
    /// One at a time, completions also or instead as imported history.
    Imported,
}

fn minutes(n: i64) -> Timestamp {
    Timestamp::from_unix_micros(at("2024-12-01T00:00:00Z").unix_micros() + n * 60_000_000).unwrap()
}

fn case() -> impl Strategy<Value = Case> {
    let deploy = (
        0..APPS.len(),
        0..COMMITS.len(),
        any::<bool>(),
        0i64..100,
        proptest::option::of(1i64..3_000),
        proptest::option::of(-3_000i64..500),
        0..SIGNALS.len(),
    );
    let deploys = proptest::collection::vec(deploy, 1..8).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(
                |(i, (app, commit, failed, slot, started, commit_timestamp, signal))| {
                    // Distinct finish times (ties would be ordered by ids, which differ between the
                    // store and this test).
                    let finished = slot * 100 + i64::try_from(i).unwrap();
                    Deploy {
                        app,
                        commit,
                        failed,
                        finished,
                        started: started.map(|before| finished - before),
                        commit_timestamp: commit_timestamp.map(|offset| finished - offset),
                        signal,
                    }
                },
            )
            .collect::<Vec<_>>()
    });
    let builds = proptest::collection::vec((0..COMMITS.len(), -3_000i64..10_000), 0..5);
    (deploys, builds)
        .prop_flat_map(|(deploys, builds)| {
            let mut sends: Vec<Send> = Vec::new();
            for (i, d) in deploys.iter().enumerate() {
                sends.push(Send::Completed(i));
                if d.started.is_some() {
                    sends.push(Send::Started(i));
                }
            }
            sends.extend((0..builds.len()).map(Send::Build));
            let count = sends.len();
            let imported = proptest::collection::vec(0u8..3, deploys.len());
            (
                Just(deploys),
                Just(builds),
                Just(sends).prop_shuffle(),
                proptest::collection::vec(0..count, 0..4),
                proptest::collection::vec(0..=count, 0..3),
                0i64..24 * 60,
                imported,
            )
        })
        .prop_map(
            |(deploys, builds, mut order, repeats, packs, shift, imported)| {
                // Repeated deliveries of events already sent, at the end.
                let again: Vec<Send> = repeats.iter().map(|&i| order[i]).collect();
                order.extend(again);
                Case {
                    deploys,
                    builds,
                    order,
                    packs,
                    shift,
                    imported,
                }
            },
        )
}

fn command(case: &Case, send: Send) -> IngestCommand {
    let application = |i: usize| ApplicationRef::Code(ApplicationCode::parse(APPS[i]).unwrap());
    let sha = |i: usize| Some(CommitSha::parse(COMMITS[i]).unwrap());
    match send {
        Send::Build(b) => {
            let (commit, at) = case.builds[b];
            let mut command = IngestCommand::new(
                PipelineEvent::parse("build.started").unwrap(),
                Provider::GithubActions,
                application(0),
            );
            command.project = Some(ProjectLookup::parse("web").unwrap());
            command.fields.commit_sha = sha(commit);
            command.fields.run_url = Some(format!("https://ci.example/builds/{b}"));
            command.started_at = Some(minutes(at));
            command
        }
        Send::Started(i) | Send::Completed(i) => {
            let d = &case.deploys[i];
            let mut command = match send {
                Send::Started(_) => deploy(PipelineEvent::DEPLOY_STARTED, None, &format!("d{i}")),
                _ => deploy(
                    PipelineEvent::DEPLOY_COMPLETED,
                    Some(if d.failed { "failure" } else { "success" }),
                    &format!("d{i}"),
                ),
            };
            command.application = application(d.app);
            command.fields.commit_sha = sha(d.commit);
            command.fields.commit_timestamp = d.commit_timestamp.map(minutes);
            command.started_at = d.started.map(minutes);
            let (branch, git_ref, message, _) = SIGNALS[d.signal];
            command.fields.branch = branch.map(str::to_owned);
            command.fields.git_ref = git_ref.map(str::to_owned);
            command.fields.commit_message = message.map(str::to_owned);
            if matches!(send, Send::Completed(_)) {
                command.finished_at = Some(minutes(d.finished));
            }
            command
        }
    }
}

/// Deployment `i`'s completion as a record of imported history: what its live event says, keyed
/// by its run as the live event is.
fn record(case: &Case, i: usize) -> ImportRecord {
    let d = &case.deploys[i];
    let (branch, git_ref, message, _) = SIGNALS[d.signal];
    ImportRecord {
        project: Some("web".to_owned()),
        application: Some(APPS[d.app].to_owned()),
        environment: Some("production".to_owned()),
        status: Some(if d.failed { "failure" } else { "success" }.to_owned()),
        provider: Some("github".to_owned()),
        started_at: d.started.map(minutes),
        finished_at: Some(minutes(d.finished)),
        commit_sha: Some(COMMITS[d.commit].to_owned()),
        commit_timestamp: d.commit_timestamp.map(minutes),
        git_ref: git_ref.map(str::to_owned),
        branch: branch.map(str::to_owned),
        commit_message: message.map(str::to_owned),
        url: Some(format!("https://ci.example/runs/d{i}")),
        ..ImportRecord::default()
    }
}

/// The records the definitions give for a case, whatever order it was sent in.
fn expected(case: &Case) -> Vec<DeploymentRecord> {
    // Every event of each commit: when, and whose (`None`: a build).
    let mut events: Vec<(usize, i64, Option<usize>)> = Vec::new();
    for (i, d) in case.deploys.iter().enumerate() {
        events.push((d.commit, d.finished, Some(i)));
        if let Some(started) = d.started {
            events.push((d.commit, started, Some(i)));
        }
    }
    events.extend(case.builds.iter().map(|&(commit, at)| (commit, at, None)));
    case.deploys
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let seen = events
                .iter()
                .filter(|(commit, _, whose)| *commit == d.commit && *whose != Some(i))
                .map(|(_, at, _)| *at)
                .min();
            DeploymentRecord {
                id: format!("d{i}"),
                application: APPS[d.app].into(),
                environment: "production".into(),
                outcome: if d.failed {
                    Outcome::Failed
                } else {
                    Outcome::Succeeded
                },
                finished_at: minutes(d.finished),
                has_commit: true,
                // A sighting after the finish does not date the commit.
                commit_time: d
                    .commit_timestamp
                    .or(seen.filter(|seen| *seen <= d.finished))
                    .map(minutes),
                started_at: d.started.map(minutes),
                rework: SIGNALS[d.signal].3,
            }
        })
        .collect()
}

/// A moment when every day of every case is over for long enough to be packed.
fn packing_time() -> Timestamp {
    minutes(60 * 24 * 60)
}

/// Imports the waiting records as one batch; none may be refused.
async fn flush(
    app: &App,
    t: &support::Tenant,
    batch: &mut Vec<ImportLine>,
) -> Result<(), TestCaseError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut outcome = ImportOutcome::default();
    let planned = app
        .plan_import(&t.admin, std::mem::take(batch), &mut outcome)
        .await
        .map_err(|e| TestCaseError::fail(format!("import refused: {e}")))?;
    outcome.merge(
        app.write_import(&t.admin, planned)
            .await
            .map_err(|e| TestCaseError::fail(format!("import failed: {e}")))?,
    );
    prop_assert_eq!(outcome.rejected_count, 0, "{:?}", outcome.rejected);
    Ok(())
}

/// Sends a case one event at a time, packing the store's DORA days where the case says
/// (`Mode::AtOnce`: all at once, each from its own task, so that on PostgreSQL the writer pool's
/// transactions on one commit overlap, with packing rounds running beside them;
/// `Mode::Imported`: completions also or instead as imported history), and compares the
/// reports over two windows before and after every day is packed.
async fn check(
    app: &App,
    store: &shiplog_store::Store,
    n: u32,
    case: &Case,
    mode: Mode,
) -> Result<(), TestCaseError> {
    let t = tenant(store, &format!("case-{n}"), u128::from(n)).await;
    let pack = |store: shiplog_store::Store| async move {
        store
            .pack_dora_days(packing_time(), usize::MAX)
            .await
            .map(|_| ())
            .map_err(|e| TestCaseError::fail(format!("packing failed: {e}")))
    };
    match mode {
        Mode::AtOnce => {
            let packer = {
                let (store, rounds) = (store.clone(), case.packs.len());
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        pack(store.clone()).await?;
                    }
                    Ok::<_, TestCaseError>(())
                })
            };
            let tasks: Vec<_> = case
                .order
                .iter()
                .map(|&send| {
                    let (app, admin, command) = (app.clone(), t.admin.clone(), command(case, send));
                    tokio::spawn(async move { (send, app.ingest(&admin, command).await) })
                })
                .collect();
            for task in tasks {
                let (send, result) = task.await.unwrap();
                result.map_err(|e| TestCaseError::fail(format!("{send:?} refused: {e}")))?;
            }
            packer.await.unwrap()?;
        }
        Mode::InOrder | Mode::Imported => {
            // Imported records waiting to go as one batch: (line, record).
            let mut batch: Vec<ImportLine> = Vec::new();
            for (i, &send) in case.order.iter().enumerate() {
                let imported = match send {
                    Send::Completed(d) if mode == Mode::Imported => case.imported[d],
                    _ => 0,
                };
                if imported == 0 || case.packs.contains(&i) {
                    flush(app, &t, &mut batch).await?;
                }
                if case.packs.contains(&i) {
                    pack(store.clone()).await?;
                }
                if let (1 | 2, Send::Completed(d)) = (imported, send) {
                    batch.push((i as u64 + 1, Ok(record(case, d))));
                }
                if imported != 1 {
                    app.ingest(&t.admin, command(case, send))
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{send:?} refused: {e}")))?;
                }
            }
            flush(app, &t, &mut batch).await?;
            if case.packs.contains(&case.order.len()) {
                pack(store.clone()).await?;
            }
        }
    }
    let listed = app
        .list_deployments(
            &t.admin,
            ListDeployments {
                limit: Some(200),
                ..ListDeployments::default()
            },
        )
        .await
        .map_err(|e| TestCaseError::fail(format!("listing refused: {e}")))?;
    prop_assert_eq!(
        listed.items.len(),
        case.deploys.len(),
        "one deployment each"
    );
    let history = History::new(expected(case));
    let midnight = Window::new(minutes(-24 * 60), minutes(15 * 24 * 60)).unwrap();
    let shifted = Window::new(
        minutes(-24 * 60 + case.shift),
        minutes(5 * 24 * 60 + case.shift),
    )
    .unwrap();
    compare(app, &t, &history, midnight).await?;
    support::pack_all(store, packing_time()).await;
    compare(app, &t, &history, midnight).await?;
    compare(app, &t, &history, shifted).await
}

/// The store's report and daily series over `window` are the definitions'.
async fn compare(
    app: &App,
    t: &support::Tenant,
    history: &History,
    window: Window,
) -> Result<(), TestCaseError> {
    let view = app
        .dora(
            &t.admin,
            DoraRequest {
                from: Some(window.from),
                to: Some(window.to),
                interval: Some(Interval::Day),
                ..DoraRequest::default()
            },
        )
        .await
        .map_err(|e| TestCaseError::fail(format!("dora refused: {e}")))?;
    prop_assert_eq!(&view.report, &history.report(window));
    let series = history.series(window, Interval::Day);
    prop_assert_eq!(view.series.as_deref(), Some(series.as_slice()));
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `cases` random histories, no failure file written.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn property(url: &str, cases: u32, mode: Mode) {
    let runtime = runtime();
    let store = open(url);
    // One App for every case: its ids are unique within it, and each case is its own workspace.
    let app = app(&store);
    let next = AtomicU32::new(1);
    let mut runner = runner(cases);
    runner
        .run(&case(), |case| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            runtime.block_on(check(&app, &store, n, &case, mode))
        })
        .unwrap();
}

/// Migration 000009 computes the same lead-time starts from recorded events as ingest kept:
/// histories recorded with it, then the migration reverted and run again, give the same
/// reports.
fn backfill(url: &str, cases: u32) {
    use shiplog_store::{DatabaseUrl, migrations};

    let runtime = runtime();
    let store = open(url);
    let app = app(&store);
    let window = Window::new(minutes(-24 * 60), minutes(15 * 24 * 60)).unwrap();
    let request = DoraRequest {
        from: Some(window.from),
        to: Some(window.to),
        ..DoraRequest::default()
    };
    let mut runner = runner(cases);
    let mut tenants = Vec::new();
    let mut n = 1000;
    while tenants.len() < usize::try_from(cases).unwrap() {
        let case = case().new_tree(&mut runner).unwrap().current();
        n += 1;
        runtime
            .block_on(check(&app, &store, n, &case, Mode::InOrder))
            .unwrap();
        tenants.push(support::tenant_ids(u128::from(n)));
    }
    let before: Vec<_> = tenants
        .iter()
        .map(|t| {
            runtime
                .block_on(app.dora(&t.admin, request.clone()))
                .unwrap()
        })
        .collect();
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    // Back to the schema before migration 000009, however many came after it, and up again.
    let mut reverted = 1;
    while migrations::revert_last(&mut conn).unwrap() != "20261128000009" {
        reverted += 1;
    }
    assert_eq!(migrations::run_pending(&mut conn).unwrap().len(), reverted);
    for (t, before) in tenants.iter().zip(before) {
        let after = runtime
            .block_on(app.dora(&t.admin, request.clone()))
            .unwrap();
        assert_eq!(after.report, before.report);
    }
}

#[test]
fn sqlite_migration_gives_the_starts_ingest_kept() {
    let db = shiplog_store::testdb::TestDb::sqlite();
    backfill(db.url(), 12);
}

#[test]
fn postgres_migration_gives_the_starts_ingest_kept() {
    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    backfill(db.url(), 12);
}

#[test]
fn sqlite_dora_equals_the_definitions_in_any_arrival_order() {
    let db = shiplog_store::testdb::TestDb::sqlite();
    property(db.url(), 48, Mode::InOrder);
}

#[test]
fn postgres_dora_equals_the_definitions_in_any_arrival_order() {
    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    property(db.url(), 24, Mode::InOrder);
}

#[test]
fn postgres_dora_equals_the_definitions_when_events_of_a_commit_arrive_at_once() {
    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    property(db.url(), 24, Mode::AtOnce);
}

#[test]
fn sqlite_dora_is_the_same_when_history_is_imported_in_any_interleaving() {
    let db = shiplog_store::testdb::TestDb::sqlite();
    property(db.url(), 32, Mode::Imported);
}

#[test]
fn postgres_dora_is_the_same_when_history_is_imported_in_any_interleaving() {
    let Some(db) = shiplog_store::testdb::TestDb::postgres() else {
        return;
    };
    property(db.url(), 16, Mode::Imported);
}
