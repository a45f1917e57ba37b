//! `cargo xtask bench dora`: the DORA metrics query over a large history, on each backend.
//!
//! Seeds 1,000,000 deployments over two years (2024-01-01 to 2026-01-01, one every 63 s) across
//! 50 applications and 4 environments (one of kind `production`), 80 % successful, 12 % failed,
//! the rest cancelled or running; 90 % name a commit, half of those with its timestamp; each has
//! a `deploy.completed` pipeline event, and each commit sent without a timestamp also a
//! `build.started` event up to a day earlier (about 1.45 M events). Then times `App::dora` for
//! the project over the last 30 and 365 days of the history and prints p50 and p90, and apart the p50 of the
//! store's read and of the domain's computation: first read from the deployments, then, after
//! packing every day (`Store::pack_dora_days`, timed), from the packed days, then from the
//! deployments again once every packed day is made stale (the first round runs right after the
//! seed and was slower than the third in every run so far). Every round gives the same reports.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs as a smoke test on 20,000
//! deployments.
//!
//! `SHIPLOG_BENCH_BACKENDS` picks the backends (default `sqlite,postgres`),
//! `SHIPLOG_BENCH_DEPLOYMENTS` the history size (default 1000000), `SHIPLOG_BENCH_RUNS` the
//! timed runs per window (default 15).
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
use shiplog_app::metrics::DoraRequest;
use shiplog_app::ports::{DeploymentStore, DoraQuery};
use shiplog_domain::dora::{History, Window};
use shiplog_domain::ids::ProjectSlug;
use shiplog_domain::timestamp::Timestamp;
use shiplog_store::{DatabaseUrl, migrations};
use support::{app, open, tenant};

use seed::{DAY, SPAN, START, percentile, seed_sql};

/// What a DORA query reads in a round of the benchmark.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The deployments, before any day is packed.
    Deployments,
    /// The packed days.
    Packed,
    /// The deployments again, every packed day made stale.
    Unpacked,
}

fn main() {
    let backends =
        std::env::var("SHIPLOG_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let (n, runs) = seed::sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores; {n} deployments over 730 days; {runs} timed runs per window",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    println!(
        "| backend | read from | window | production deployments in window | seed time | p50 | p90 | store read p50 | computation p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut backfills = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        let Some(db) = seed::database(backend, 6) else {
            continue;
        };
        let store = open(db.url());
        let t = runtime.block_on(tenant(&store, "bench", 1));
        let seeded = Instant::now();
        let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
        conn.batch_execute(&seed_sql(
            &t.workspace.to_string(),
            &t.project.to_string(),
            n,
        ))
        .unwrap();
        // Ingest keeps each deployment's lead-time start (`commit_sightings`) and rework signal;
        // rows seeded directly have neither, so compute them the way an upgrade does: run the
        // migrations that derive them from the recorded events and branches again.
        let backfilled = Instant::now();
        while migrations::revert_last(&mut conn).unwrap() != "20261128000009" {}
        migrations::run_pending(&mut conn).unwrap();
        backfills.push(format!(
            "{backend}: migrations 000009 to the last (lead-time starts from the recorded \
             events, rework signals from the branches) over {n} deployments took {:.1} s",
            backfilled.elapsed().as_secs_f64()
        ));
        if backend == "postgres" {
            // Index-only scans need the visibility map that VACUUM writes (autovacuum would, later).
            conn.batch_execute("VACUUM ANALYZE").unwrap();
        } else {
            // The seed and the migrations' rewrites are still in the write-ahead log, whose pages
            // readers look up apart from the mapped file; a running server's checkpointer would
            // have copied them into it.
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let seed_time = seeded.elapsed();
        let app = app(&store);
        let mut unpacked_reports = Vec::new();
        for phase in [Phase::Deployments, Phase::Packed, Phase::Unpacked] {
            let packed = phase == Phase::Packed;
            if phase == Phase::Unpacked {
                // Every packed day back to stale: the same read path as before packing, measured
                // after the same settling time as the packed days.
                conn.batch_execute("UPDATE dora_days SET state = 0, records = NULL")
                    .unwrap();
            }
            if packed {
                let started = Instant::now();
                let days = runtime.block_on(support::pack_all(
                    &store,
                    Timestamp::from_unix_micros(START + SPAN + 2 * DAY).unwrap(),
                ));
                backfills.push(format!(
                    "{backend}: packing {days} days took {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                if backend == "postgres" {
                    conn.batch_execute("VACUUM ANALYZE dora_days").unwrap();
                }
            }
            let source = match phase {
                Phase::Deployments => "deployments",
                Phase::Packed => "packed days",
                Phase::Unpacked => "deployments, after",
            };
            for (w, days) in [30, 365].into_iter().enumerate() {
                let to = Timestamp::from_unix_micros(START + SPAN).unwrap();
                let from = Timestamp::from_unix_micros(START + SPAN - days * DAY).unwrap();
                let request = DoraRequest {
                    project: Some(ProjectSlug::parse("web").unwrap()),
                    from: Some(from),
                    to: Some(to),
                    ..DoraRequest::default()
                };
                let warm = runtime
                    .block_on(app.dora(&t.admin, request.clone()))
                    .unwrap();
                if phase != Phase::Deployments {
                    assert_eq!(
                        unpacked_reports.get(w),
                        Some(&warm.report),
                        "packing changes no report"
                    );
                } else {
                    unpacked_reports.push(warm.report.clone());
                }
                let counted = warm.report.change_failure_rate.samples;
                assert!(counted > 0, "the window holds deployments");
                assert!(
                    warm.report.rework_rate.reasons.hotfix_ref > 0,
                    "the window holds hotfix deployments"
                );
                let mut times: Vec<Duration> = (0..runs)
                    .map(|_| {
                        let started = Instant::now();
                        let view = runtime
                            .block_on(app.dora(&t.admin, request.clone()))
                            .unwrap();
                        let elapsed = started.elapsed();
                        assert_eq!(view.report, warm.report, "the same answer every time");
                        elapsed
                    })
                    .collect();
                times.sort();
                // Where the time goes: the store's read alone, and the domain's computation alone.
                let query = DoraQuery {
                    project: Some(t.project),
                    environment: None,
                    application: None,
                    window: Window::new(from, to).unwrap(),
                    link_hours: shiplog_domain::dora::DEFAULT_LINK_HOURS,
                };
                let mut reads = Vec::new();
                let mut computes = Vec::new();
                for _ in 0..runs {
                    let started = Instant::now();
                    let data = runtime
                        .block_on(DeploymentStore::dora(&store, t.workspace, query.clone()))
                        .unwrap();
                    reads.push(started.elapsed());
                    let started = Instant::now();
                    let report = History::new(data.records)
                        .with_incidents(data.incidents, query.link_hours)
                        .report(query.window);
                    computes.push(started.elapsed());
                    assert_eq!(report, warm.report);
                }
                reads.sort();
                computes.sort();
                println!(
                    "| {backend} | {source} | {days} days | {counted} | {:.1} s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                    seed_time.as_secs_f64(),
                    percentile(&times, 50).as_secs_f64() * 1e3,
                    percentile(&times, 90).as_secs_f64() * 1e3,
                    percentile(&reads, 50).as_secs_f64() * 1e3,
                    percentile(&computes, 50).as_secs_f64() * 1e3,
                );
            }
        }
    }
    println!();
    for line in backfills {
        println!("{line}");
    }
}
