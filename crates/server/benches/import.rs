//! `cargo xtask bench import`: a history of `SHIPLOG_BENCH_IMPORT_RECORDS` deployments
//! (default 1,000,000) imported through `POST /api/v1/import` from an NDJSON file, against the
//! `shiplog` binary this package builds (release under `cargo bench`), on a fresh SQLite file and
//! on a fresh database of the project's throwaway PostgreSQL cluster (fsync on).
//!
//! The history: two years of deployments of five applications to three environments, each with
//! its commit, the commit's time (lead time), a message naming a change request, a run URL and
//! an external id; every ninth failed. The file is streamed to the server in 256 KiB chunks, as
//! `curl --data-binary @file` or `shiplog import file` would send it.
//!
//! Each backend prints: records/s, the whole import's seconds, the server's peak RSS (`VmHWM`,
//! the process's whole life so far), `accepted = stored`, the p50/p99 latency of a live
//! Clienwork ingest sent back to back on one connection while the import runs, the seconds until
//! every imported day is packed (the DORA packer is woken when an import ends), and the latency
//! of a DORA query over the two years then. Beside them, the same references `bench http`
//! divides by, measured in the same run: the fsync rate (SQLite) and single-row autocommit
//! INSERTs on the same cluster (PostgreSQL), and each import's records/s as a ratio to them.
//!
//! Run by `cargo test --all-targets` (no `--bench` argument), it is a smoke run of 2,000
//! records. `SHIPLOG_BENCH_BACKENDS` picks backends (default `sqlite,postgres`).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::{Server, acme_web, count, database, insert_rate, percentile_ms, stored};

const APPLICATIONS: [&str; 5] = ["api", "web", "worker", "billing", "search"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "preview"];
/// The history's first day: 2024-01-01T00:00:00Z.
const START: i64 = 1_704_067_200;
/// Its length: two years.
const SPAN_SECONDS: i64 = 730 * 86_400;

fn rfc3339(unix: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Writes the history, one record per line.
fn write_history(path: &Path, records: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    for i in 0..records {
        let started =
            START + SPAN_SECONDS * i64::try_from(i).unwrap() / i64::try_from(records).unwrap();
        let record = json!({
            "application": APPLICATIONS[(i % 5) as usize],
            "environment": ENVIRONMENTS[((i / 5) % 3) as usize],
            "status": if i % 9 == 0 { "failure" } else { "success" },
            "provider": "github",
            "started_at": rfc3339(started),
            "finished_at": rfc3339(started + 240),
            "commit_sha": format!("{:040x}", i + 1),
            "commit_timestamp": rfc3339(started - 3 * 3600),
            "ref": "refs/heads/main",
            "commit_message": format!("Change {i} (#PR-{})", i / 3),
            "url": format!("https://ci.example/runs/{i}"),
            "deployed_by": format!("dev{}", i % 17),
            "external_id": format!("history-{i}"),
        });
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
}

/// Streams the file to `POST /api/v1/import`; the answer and the seconds it took.
fn import(base: &str, key: &str, path: &Path) -> (Value, Duration) {
    let url = format!("{base}/api/v1/import?project=web");
    let path = path.to_owned();
    let key = key.to_owned();
    actix_web::rt::System::new().block_on(async move {
        let file = std::fs::File::open(path).unwrap();
        let body = futures_util::stream::unfold(file, |mut file| async move {
            let mut buffer = vec![0u8; 256 * 1024];
            let n = file.read(&mut buffer).unwrap();
            (n > 0).then(|| {
                buffer.truncate(n);
                (
                    Ok::<_, std::io::Error>(actix_web::web::Bytes::from(buffer)),
                    file,
                )
            })
        });
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(3600))
            .finish();
        let started = Instant::now();
        let mut response = client
            .post(url)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", "application/x-ndjson"))
            .send_stream(body)
            .await
            .unwrap();
        let body = response.body().limit(64 * 1024 * 1024).await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            response.status().is_success(),
            "import answered {}: {body:?}",
            response.status()
        );
        (serde_json::from_slice(&body).unwrap(), elapsed)
    })
}

/// A live Clienwork ingest sent back to back on one connection until `stop`; its latencies.
fn live_ingests(base: &str, key: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
    let (base, key) = (base.to_owned(), key.to_owned());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let client = awc::Client::builder()
                .connector(awc::Connector::new().limit(1))
                .timeout(Duration::from_secs(30))
                .finish();
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({
                    "event": "deploy.completed", "project_slug": "web", "status": "success",
                    "environment": "production", "commit_sha": format!("{n:0>40x}"),
                    "url": format!("https://ci.example/live/{n}"),
                });
                let sent = Instant::now();
                let mut response = client
                    .post(format!("{base}/api/webhooks/ci"))
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .send_json(&body)
                    .await
                    .unwrap();
                let _ = response.body().await;
                assert!(
                    response.status().is_success(),
                    "live ingest: {}",
                    response.status()
                );
                latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                // One ingest every 10 ms: a busy pipeline, not a second import.
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            }
            latencies.sort_unstable();
            latencies
        })
    })
}

/// Imported days not packed yet (before today).
fn unpacked_days(database_url: &str) -> i64 {
    let today = time::OffsetDateTime::now_utc().unix_timestamp() / 86_400;
    count(
        database_url,
        &format!("SELECT count(*) AS n FROM dora_days WHERE state <> 2 AND day < {today}"),
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let records: u64 = std::env::var("SHIPLOG_BENCH_IMPORT_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 });
    let backends: Vec<String> = std::env::var("SHIPLOG_BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite,postgres".to_owned())
        .split(',')
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.ndjson");
    let written = Instant::now();
    write_history(&history, records);
    let bytes = std::fs::metadata(&history).unwrap().len();
    println!(
        "shiplog import benchmark: {records} records, {:.0} MB of NDJSON (written in {:.1} s), binary {}",
        bytes as f64 / 1e6,
        written.elapsed().as_secs_f64(),
        env!("CARGO_BIN_EXE_shiplog")
    );
    let reference_time = Duration::from_secs(if full { 3 } else { 1 });
    let fsync = shiplog_store::testdb::fsync_rate(dir.path(), reference_time);
    println!("fsync reference (4 KiB write + fdatasync, temp dir): {fsync:.0} /s");

    println!(
        "\n| backend | records/s | seconds | × reference | peak RSS MiB | accepted = stored | live p50 ms | live p99 ms | live ingests | packed after s | DORA 2 years ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for backend in &backends {
        let Some(db) = database(backend) else {
            println!("| {backend} | skipped: no PostgreSQL server could be started |");
            continue;
        };
        let (reference, reference_name) = if backend == "postgres" {
            (insert_rate(db.url(), 1, reference_time), "INSERT")
        } else {
            (fsync, "fsync")
        };
        let server = Server::start(db.url());
        let (admin, ingest) = acme_web(&server.base);
        let stop = Arc::new(AtomicBool::new(false));
        let live = live_ingests(&server.base, &ingest, stop.clone());
        let (answer, elapsed) = import(&server.base, &ingest, &history);
        stop.store(true, Ordering::Relaxed);
        let latencies = live.join().unwrap();
        let rss = server.peak_rss_mib();
        let busiest: Vec<String> = server
            .cpu_by_thread()
            .iter()
            .take(4)
            .map(|(name, seconds)| format!("{name} {seconds:.1} s"))
            .collect();
        notes.push(format!(
            "{backend}: server CPU by thread during the import: {}",
            busiest.join(", ")
        ));
        let accepted = answer["accepted"].as_u64().unwrap_or(0);
        let live_count = latencies.len() as u64;
        let in_database = stored(db.url());
        let imported = in_database.saturating_sub(live_count);
        let packing = Instant::now();
        let packed_after = loop {
            if unpacked_days(db.url()) == 0 {
                break packing.elapsed().as_secs_f64();
            }
            if packing.elapsed() > Duration::from_secs(600) {
                failures.push(format!("{backend}: days still unpacked after 10 minutes"));
                break f64::NAN;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let dora_started = Instant::now();
        setup_get(
            &server.base,
            &admin,
            "/api/v1/metrics/dora?project=web&environment=production&from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        );
        let dora_ms = dora_started.elapsed().as_secs_f64() * 1000.0;
        let rate = records as f64 / elapsed.as_secs_f64();
        println!(
            "| {backend} | {rate:.0} | {:.1} | {:.2} × {reference_name} ({reference:.0}/s) | {rss:.0} | {accepted} {} {imported} | {:.2} | {:.2} | {live_count} | {packed_after:.1} | {dora_ms:.0} |",
            elapsed.as_secs_f64(),
            rate / reference,
            if accepted == imported { "=" } else { "≠" },
            percentile_ms(&latencies, 0.5),
            percentile_ms(&latencies, 0.99),
        );
        if accepted != records || accepted != imported {
            failures.push(format!(
                "{backend}: {records} records, {accepted} accepted, {imported} stored: {answer}"
            ));
        }
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    assert!(failures.is_empty(), "the benchmark failed: {failures:#?}");
}

/// GETs with a key; panics unless 2xx.
fn setup_get(base: &str, key: &str, path: &str) -> Value {
    let url = format!("{base}{path}");
    let key = key.to_owned();
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(600))
            .finish();
        let mut response = client
            .get(&url)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        let body = response.body().limit(64 * 1024 * 1024).await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    })
}
