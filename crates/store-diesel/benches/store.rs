//! `cargo xtask bench store`: durable ingests per second for each backend at 1, 16 and 64
//! concurrent writers, beside this machine's single-commit fsync rate measured in the same run.
//!
//! `SHIPLOG_BENCH_SECONDS` sets the length of each row (default 3; 0.2 as a smoke test under
//! `cargo test --all-targets`, which does not pass `--bench`), `SHIPLOG_BENCH_BACKENDS` which
//! backends run (default `sqlite,postgres`).
//!
//! Every figure counts only writes whose call returned (durably committed), and after each run
//! the deployments are counted back from the database: nothing acknowledged may be missing.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use shiplog_domain::event::PipelineEvent;
use shiplog_store::DatabaseUrl;
use shiplog_store::testdb::TestDb;
use support::{app, deploy, open, tenant};

const WRITERS: [usize; 3] = [1, 16, 64];

fn seconds() -> Duration {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("SHIPLOG_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 3.0 } else { 0.2 });
    Duration::from_secs_f64(secs)
}

/// One SQLite transaction per insert, same pragmas as the store: the rate without group commit.
fn sqlite_single_commit_rate(duration: Duration) -> f64 {
    let db = TestDb::sqlite();
    let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
    conn.batch_execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .unwrap();
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        conn.batch_execute("BEGIN IMMEDIATE; INSERT INTO probe (body) VALUES ('x'); COMMIT;")
            .unwrap();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Ingests from `writers` concurrent tasks for `duration`; returns (acknowledged, stored, seconds).
async fn run(url: &str, writers: usize, duration: Duration) -> (u64, u64, f64) {
    let store = open(url);
    let t = tenant(&store, "bench", 1).await;
    let app = app(&store);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let app = app.clone();
            let admin = t.admin.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    let command = deploy(
                        PipelineEvent::DEPLOY_COMPLETED,
                        Some("success"),
                        &format!("w{w}-{n}"),
                    );
                    app.ingest(&admin, command).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let acknowledged = done.load(Ordering::Relaxed);

    let stored = support::count_deployments(&app, &t.admin).await as u64;
    assert_eq!(
        stored, acknowledged,
        "an acknowledged write is missing from the database"
    );
    (acknowledged, stored, elapsed)
}

fn main() {
    let duration = seconds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let probe_dir = tempfile::tempdir().unwrap();
    let fsync = shiplog_store::testdb::fsync_rate(probe_dir.path(), duration);
    let single = sqlite_single_commit_rate(duration);
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("run length per row: {:.1} s", duration.as_secs_f64());
    println!("fsync reference (4 KiB write + fdatasync, temp dir): {fsync:.0} /s");
    println!("SQLite one-transaction-per-insert reference (WAL, synchronous=FULL): {single:.0} /s");
    println!();
    println!(
        "| backend | writers | durable ingests/s | × fsync | × SQLite single-commit | acknowledged = stored |"
    );
    println!("|---|---|---|---|---|---|");
    let wanted =
        std::env::var("SHIPLOG_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    for backend in ["sqlite", "postgres"]
        .into_iter()
        .filter(|b| wanted.contains(b))
    {
        for writers in WRITERS {
            let db = match backend {
                "sqlite" => TestDb::sqlite(),
                _ => match TestDb::postgres_durable() {
                    Some(db) => db,
                    None => {
                        println!("| postgres | {writers} | skipped: no PostgreSQL | | | |");
                        continue;
                    }
                },
            };
            let (acknowledged, stored, elapsed) =
                runtime.block_on(run(db.url(), writers, duration));
            let rate = acknowledged as f64 / elapsed;
            println!(
                "| {backend} | {writers} | {rate:.0} | {:.2} | {:.2} | {acknowledged} = {stored} |",
                rate / fsync,
                rate / single
            );
        }
    }
}
