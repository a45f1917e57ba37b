//! `cargo xtask bench lifecycle`: what operating a large database costs, on each backend.
//!
//! Seeds the history `bench dora` measures (1,000,000 deployments over two years with about
//! 1.45 M pipeline events, `SHIPLOG_BENCH_DEPLOYMENTS` to change), then times:
//!
//! - migration 000019 (the audit log and the indexes retention reads) over that history;
//! - SQLite: `shiplog backup` (`backup::backup`: `VACUUM INTO` and the integrity check) and
//!   `shiplog restore`, with the files' sizes;
//! - one retention pass removing the events older than a year, in rounds of 500 rows of each
//!   kind as the server runs them: the pass, rows per second, and the p50 and p99 of one
//!   round's write jobs, which is the longest an ingest waits behind retention;
//! - deleting the project with every deployment (one transaction: the writer is held for it).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs as a smoke test on 20,000
//! deployments.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

mod seed;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use shiplog_app::lifecycle::Retention;
use shiplog_store::{DatabaseUrl, migrations};
use support::{app_at, at, open, tenant};

use seed::{percentile, seed_sql};

fn main() {
    let backends =
        std::env::var("SHIPLOG_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let (n, _) = seed::sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| backend | deployments | what | time | detail |");
    println!("|---|---|---|---|---|");
    for backend in backends.split(',').map(str::trim) {
        let Some(db) = seed::database(backend, 3) else {
            continue;
        };
        let store = open(db.url());
        let t = runtime.block_on(tenant(&store, "bench", 1));
        let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
        conn.batch_execute(&seed_sql(
            &t.workspace.to_string(),
            &t.project.to_string(),
            n,
        ))
        .unwrap();
        // Back to before 000019, then time it alone.
        while migrations::revert_last(&mut conn).unwrap() != "20261206000019" {}
        let started = Instant::now();
        migrations::run_pending(&mut conn).unwrap();
        let row = |what: &str, took: Duration, detail: String| {
            println!(
                "| {backend} | {n} | {what} | {:.2} s | {detail} |",
                took.as_secs_f64()
            );
        };
        row(
            "migration 000019",
            started.elapsed(),
            "audit_events, pipeline_events_by_time, hook_deliveries_by_time".to_owned(),
        );
        if backend == "sqlite" {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
            let url = DatabaseUrl::parse(db.url()).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let copy = dir.path().join("backup.db");
            let started = Instant::now();
            let bytes = shiplog_store::backup::backup(&url, &copy).unwrap();
            row(
                "shiplog backup",
                started.elapsed(),
                format!(
                    "{:.0} MB copy, integrity check included",
                    bytes as f64 / 1e6
                ),
            );
            let target =
                DatabaseUrl::parse(&dir.path().join("restored.db").display().to_string()).unwrap();
            let started = Instant::now();
            shiplog_store::backup::restore(&copy, &target).unwrap();
            row(
                "shiplog restore",
                started.elapsed(),
                "checked, then moved into place".to_owned(),
            );
        }

        // Retention: events received more than a year before the history's end.
        let app = app_at(&store, at("2026-01-01T00:00:00Z"));
        let retention = Retention {
            days: 365,
            deployment_days: None,
            batch: 500,
        };
        let mut rounds = Vec::new();
        let mut removed = 0;
        let started = Instant::now();
        loop {
            let round = Instant::now();
            let pruned = runtime.block_on(app.prune(retention)).unwrap();
            rounds.push(round.elapsed());
            removed += pruned.total();
            if !pruned.any_full(retention.batch) {
                break;
            }
        }
        let pass = started.elapsed();
        rounds.sort();
        row(
            "retention pass (365 days)",
            pass,
            format!(
                "{removed} rows, {:.0} rows/s, {} rounds; one round p50 {:.1} ms, p99 {:.1} ms",
                removed as f64 / pass.as_secs_f64(),
                rounds.len(),
                percentile(&rounds, 50).as_secs_f64() * 1e3,
                percentile(&rounds, 99).as_secs_f64() * 1e3,
            ),
        );

        let started = Instant::now();
        runtime
            .block_on(app.delete_project(&t.admin, "web"))
            .unwrap();
        row(
            "delete the project",
            started.elapsed(),
            "every deployment and event of it, one transaction".to_owned(),
        );
    }
}
