//! `cargo xtask bench http`: ingests per second through HTTP, against the `shiplog` binary this
//! package builds (release under `cargo bench`), on a fresh SQLite file and on a fresh database of
//! the project's throwaway PostgreSQL cluster (fsync on), at 1, 16 and 64 client connections, for
//! each ingest dialect: Clienwork (keyed), Hivel (keyed) and Envtracker (signed). Every request is
//! a distinct deployment.
//!
//! The same run measures the references each row is divided by:
//! - **echo**: an actix-web server with the same worker count answering the same Clienwork
//!   request with a fixed JSON body, at the same connection count (what the HTTP layer and this
//!   load generator can carry on this machine);
//! - **fsync**: a loop of 4 KiB `write` + `fdatasync` (what one durable commit at a time costs);
//! - **INSERT**: single-row autocommit `INSERT`s into the same PostgreSQL cluster, one thread and
//!   connection per client, at the same concurrency (then the table is dropped and a
//!   `CHECKPOINT` flushes what it left, so that shiplog's rows do not pay for it).
//!
//! Each row prints ingests/s, p50/p99 latency, the ratios, the server's peak RSS so far
//! (`VmHWM`) and `acknowledged = stored`: the deployments counted in the database after the row
//! must equal the 2xx answers, or the run fails.
//!
//! Loopback only; every row stops after `SHIPLOG_BENCH_SECONDS` (default 3) or
//! `SHIPLOG_BENCH_MAX_REQUESTS` requests (default 200 000), whichever comes first.
//! `SHIPLOG_BENCH_BACKENDS` picks backends (default `sqlite,postgres`), `SHIPLOG_BENCH_DIALECTS`
//! dialects (default `clienwork,hivel,envtracker`). Run by `cargo test
//! --all-targets` (no `--bench` argument), it is a smoke run: 0.2 s rows at 2 connections.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use support::{
    MASTER, Server, WORKERS, acme_web, free_port, insert_rate, setup, stored, wait_until_up,
};
/// What the echo reference answers: the size and shape of shiplog's Clienwork answer.
const ECHO_BODY: &str = r##"{"success":true,"deployment_id":"00000000-0000-0000-0000-000000000000","linked_requests":["PR-12","#34"],"message":"Processed deploy.completed event. Linked 2 request(s).","references_not_linked":0}"##;
/// Load-generator threads (each runs its share of the connections).
const GENERATORS: usize = 2;

struct Settings {
    seconds: Duration,
    max_requests: u64,
    connections: Vec<usize>,
    backends: Vec<String>,
    dialects: Vec<String>,
}

impl Settings {
    fn from_env() -> Self {
        // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is a smoke run.
        let full = std::env::args().any(|a| a == "--bench");
        let seconds = std::env::var("SHIPLOG_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if full { 3.0 } else { 0.2 });
        let max_requests = std::env::var("SHIPLOG_BENCH_MAX_REQUESTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        let backends = list("SHIPLOG_BENCH_BACKENDS", "sqlite,postgres");
        let dialects = list("SHIPLOG_BENCH_DIALECTS", "clienwork,hivel,envtracker");
        Self {
            seconds: Duration::from_secs_f64(seconds),
            max_requests,
            connections: if full { vec![1, 16, 64] } else { vec![2] },
            backends,
            dialects,
        }
    }
}

/// The comma-separated items of the variable `name`, else of `default`.
fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One request to send: method, path, headers, body.
struct Request {
    put: bool,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// How to build the `n`-th request of a dialect (distinct for every `n`).
#[derive(Clone)]
enum Dialect {
    Clienwork { key: String },
    Hivel { key: String },
    Envtracker { key_id: String, secret: String },
}

impl Dialect {
    fn name(&self) -> &'static str {
        match self {
            Self::Clienwork { .. } => "clienwork (keyed)",
            Self::Hivel { .. } => "hivel (keyed)",
            Self::Envtracker { .. } => "envtracker (signed)",
        }
    }

    fn request(&self, run: &str, n: u64) -> Request {
        match self {
            Self::Clienwork { key } => Request {
                put: false,
                path: "/api/webhooks/ci",
                headers: vec![("X-Clienwork-API-Key", key.clone())],
                body: clienwork_body(run, n),
            },
            Self::Hivel { key } => Request {
                put: false,
                path: "/api/hooks/v2/deployment",
                headers: vec![("X-API-Token", key.clone())],
                body: json!({
                    "deployment_id": format!("{run}-{n}"),
                    "event_type": "completed",
                    "status": "success",
                    "repo_url": "https://github.com/acme/api",
                    "commit_hash": commit(run, n),
                    "environment": "production",
                    "start_time": "2026-01-05T12:00:00Z",
                    "end_time": "2026-01-05T12:03:00Z",
                    "branch": "main",
                    "pr_numbers": [71, 35],
                })
                .to_string(),
            },
            Self::Envtracker { key_id, secret } => {
                let body = json!({
                    "projectCode": "web", "envCode": "production", "repoCode": "api",
                    "pipeline": format!("{run}-{n}"), "status": "success", "branch": "main",
                    "deployDate": "2026-01-05T12:03:00Z",
                })
                .to_string();
                let timestamp = unix_now().to_string();
                let signature = shiplog_signature::envtracker::sign(
                    secret.as_bytes(),
                    &timestamp,
                    body.as_bytes(),
                );
                Request {
                    put: true,
                    path: "/webhook/notify",
                    headers: vec![
                        ("X-Webhook-Key", key_id.clone()),
                        ("X-Webhook-Timestamp", timestamp),
                        ("X-Webhook-Signature", signature),
                    ],
                    body,
                }
            }
        }
    }
}

/// A commit seen for the first time: distinct across rows (`run`) and requests (`n`), as each
/// deploy of a new commit is. (A commit deployed again, to another environment, costs one more
/// statement when only deploys of it were reported: see docs/benchmarks.md.)
fn commit(run: &str, n: u64) -> String {
    let tail = run.get(run.len().saturating_sub(16)..).unwrap_or(run);
    format!("{tail:0>16}{n:024x}")
}

/// A Clienwork `deploy.completed` naming two references; the run URL makes it distinct.
fn clienwork_body(run: &str, n: u64) -> String {
    json!({
        "event": "deploy.completed", "project_slug": "web", "status": "success",
        "environment": "production", "commit_sha": commit(run, n),
        "commit_message": "Speed up login (#PR-12, fixes #34)",
        "url": format!("https://ci.example/runs/{run}/{n}"),
    })
    .to_string()
}

/// What one row of load produced.
struct Load {
    acknowledged: u64,
    refused: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        support::percentile_ms(&self.latencies_us, p)
    }
}

/// Drives `base` with `connections` concurrent keep-alive connections for `settings`' bounds.
fn drive(base: &str, dialect: &Dialect, connections: usize, settings: &Settings) -> Load {
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + settings.seconds;
    let run = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let start = Instant::now();
    let threads: Vec<_> = (0..GENERATORS.min(connections))
        .map(|g| {
            let share = connections / GENERATORS.min(connections)
                + usize::from(g < connections % GENERATORS.min(connections));
            let (base, dialect, issued, run) = (
                base.to_owned(),
                dialect.clone(),
                Arc::clone(&issued),
                run.clone(),
            );
            let max = settings.max_requests;
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let tasks = (0..share).map(|_| {
                        let (base, dialect, issued, run) = (
                            base.clone(),
                            dialect.clone(),
                            Arc::clone(&issued),
                            run.clone(),
                        );
                        actix_web::rt::spawn(async move {
                            connection(&base, &dialect, &issued, &run, max, deadline).await
                        })
                    });
                    let mut out = (0, 0, Vec::new());
                    for task in tasks.collect::<Vec<_>>() {
                        let (ok, refused, latencies) = task.await.unwrap();
                        out.0 += ok;
                        out.1 += refused;
                        out.2.extend(latencies);
                    }
                    out
                })
            })
        })
        .collect();
    let mut load = Load {
        acknowledged: 0,
        refused: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for thread in threads {
        let (ok, refused, latencies) = thread.join().unwrap();
        load.acknowledged += ok;
        load.refused += refused;
        load.latencies_us.extend(latencies);
    }
    load.elapsed = start.elapsed();
    load.latencies_us.sort_unstable();
    load
}

/// One keep-alive connection sending requests back to back.
async fn connection(
    base: &str,
    dialect: &Dialect,
    issued: &AtomicU64,
    run: &str,
    max: u64,
    deadline: Instant,
) -> (u64, u64, Vec<u32>) {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(1))
        .timeout(Duration::from_secs(30))
        .finish();
    let (mut ok, mut refused, mut latencies) = (0, 0, Vec::new());
    while Instant::now() < deadline {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        if n >= max {
            break;
        }
        let request = dialect.request(run, n);
        let url = format!("{base}{}", request.path);
        let mut builder = if request.put {
            client.put(url)
        } else {
            client.post(url)
        };
        builder = builder.insert_header(("Content-Type", "application/json"));
        for (name, value) in request.headers {
            builder = builder.insert_header((name, value));
        }
        let sent = Instant::now();
        let answer = builder.send_body(request.body).await;
        let status = match answer {
            Ok(mut response) => {
                let _ = response.body().await;
                Some(response.status())
            }
            Err(_) => None,
        };
        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        if status.is_some_and(|s| s.is_success()) {
            ok += 1;
        } else {
            refused += 1;
            if refused <= 3 {
                eprintln!("bench: {} answered {status:?}", dialect.name());
            }
        }
    }
    (ok, refused, latencies)
}

/// The echo reference: an actix-web server answering every request with a fixed JSON body.
fn echo_server() -> String {
    let port = free_port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(|| {
                actix_web::App::new().default_service(actix_web::web::to(
                    |_body: actix_web::web::Bytes| async {
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(ECHO_BODY)
                    },
                ))
            })
            .workers(WORKERS)
            .bind(("127.0.0.1", port))
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, "/");
    base
}

/// Workspace `acme`, project `web`, an ingest key limited to it, a signing key, and the
/// Envtracker environment and assignment its notify needs.
fn bootstrap(base: &str) -> Vec<Dialect> {
    let master = [("Authorization", format!("Bearer {MASTER}"))];
    let master: Vec<(&str, &str)> = master.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (admin, ingest) = acme_web(base);
    let bearer = format!("Bearer {admin}");
    let auth = [("Authorization", bearer.as_str())];
    setup(
        base,
        false,
        "/api/v1/teams",
        &auth,
        json!({"code": "engineering", "name": "Engineering"}),
    );
    let signing = setup(
        base,
        false,
        "/api/v1/workspaces/acme/signing-keys",
        &master,
        json!({"name": "bench-pipelines"}),
    );
    let envtracker = Dialect::Envtracker {
        key_id: signing["key_id"].as_str().unwrap().to_owned(),
        secret: signing["secret"].as_str().unwrap().to_owned(),
    };
    for (path, body) in [
        (
            "/webhook/create-environment",
            json!({"name": "production", "code": "production", "teamCode": "engineering", "type": "PRODUCTION"}),
        ),
        (
            "/webhook/assign-apps",
            json!({"projectCode": "web", "apps": [{"repoCode": "api", "envs": ["production"]}]}),
        ),
    ] {
        let Request { headers, body, .. } = signed(&envtracker, path, &body);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        setup(
            base,
            true,
            path,
            &headers,
            serde_json::from_str(&body).unwrap(),
        );
    }
    vec![
        Dialect::Clienwork {
            key: ingest.clone(),
        },
        Dialect::Hivel { key: ingest },
        envtracker,
    ]
}

/// A signed Envtracker set-up request.
fn signed(dialect: &Dialect, path: &'static str, body: &Value) -> Request {
    let Dialect::Envtracker { key_id, secret } = dialect else {
        unreachable!("only Envtracker requests are signed")
    };
    let body = body.to_string();
    let timestamp = unix_now().to_string();
    let signature =
        shiplog_signature::envtracker::sign(secret.as_bytes(), &timestamp, body.as_bytes());
    Request {
        put: true,
        path,
        headers: vec![
            ("X-Webhook-Key", key_id.clone()),
            ("X-Webhook-Timestamp", timestamp),
            ("X-Webhook-Signature", signature),
        ],
        body,
    }
}

fn main() {
    let settings = Settings::from_env();
    println!(
        "shiplog HTTP ingest benchmark: rows of {:?} or {} requests, {GENERATORS} load-generator \
         threads, {WORKERS} server workers, binary {}",
        settings.seconds,
        settings.max_requests,
        env!("CARGO_BIN_EXE_shiplog")
    );

    let probe_dir = tempfile::tempdir().unwrap();
    let fsync = shiplog_store::testdb::fsync_rate(probe_dir.path(), settings.seconds);
    println!("\nfsync reference (4 KiB write + fdatasync, temp dir): {fsync:.0} /s");

    let echo_base = echo_server();
    let echo_dialect = Dialect::Clienwork {
        key: "unused".to_owned(),
    };
    let mut echo = Vec::new();
    println!("\n| echo reference | connections | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for &connections in &settings.connections {
        let load = drive(&echo_base, &echo_dialect, connections, &settings);
        println!(
            "| actix-web fixed JSON | {connections} | {:.0} | {:.2} | {:.2} |",
            load.rate(),
            load.percentile_ms(0.5),
            load.percentile_ms(0.99)
        );
        echo.push(load.rate());
    }

    let mut failures = Vec::new();
    for backend in &settings.backends {
        let Some(db) = support::database(backend) else {
            println!("\n{backend}: skipped (no PostgreSQL server could be started)");
            continue;
        };
        let inserts: Vec<f64> = if backend == "postgres" {
            println!("\n| INSERT reference (same cluster) | clients | rows/s |");
            println!("|---|---|---|");
            settings
                .connections
                .iter()
                .map(|&clients| {
                    let rate = insert_rate(db.url(), clients, settings.seconds);
                    println!("| single-row autocommit INSERT | {clients} | {rate:.0} |");
                    rate
                })
                .collect()
        } else {
            Vec::new()
        };
        let server = Server::start(db.url());
        let dialects = bootstrap(&server.base);
        println!(
            "\n| {backend} | connections | ingests/s | p50 ms | p99 ms | × echo | × fsync |{} peak RSS MiB | refused | acknowledged = stored |",
            if inserts.is_empty() {
                ""
            } else {
                " × INSERT |"
            }
        );
        println!(
            "|---|---|---|---|---|---|---|{}---|---|---|",
            if inserts.is_empty() { "" } else { "---|" }
        );
        for dialect in dialects.iter().filter(|d| {
            settings
                .dialects
                .iter()
                .any(|wanted| d.name().starts_with(wanted.as_str()))
        }) {
            for (i, &connections) in settings.connections.iter().enumerate() {
                let before = stored(db.url());
                let load = drive(&server.base, dialect, connections, &settings);
                let after = stored(db.url()) - before;
                let insert = inserts
                    .get(i)
                    .map(|r| format!(" {:.3} |", load.rate() / r))
                    .unwrap_or_default();
                let same = if load.acknowledged == after {
                    "="
                } else {
                    "≠"
                };
                println!(
                    "| {} | {connections} | {:.0} | {:.2} | {:.2} | {:.3} | {:.2} |{insert} {:.0} | {} | {} {same} {after} |",
                    dialect.name(),
                    load.rate(),
                    load.percentile_ms(0.5),
                    load.percentile_ms(0.99),
                    load.rate() / echo[i],
                    load.rate() / fsync,
                    server.peak_rss_mib(),
                    load.refused,
                    load.acknowledged,
                );
                if load.acknowledged != after {
                    failures.push(format!(
                        "{backend} {} at {connections}: {} acknowledged, {after} stored",
                        dialect.name(),
                        load.acknowledged
                    ));
                }
                if load.acknowledged == 0 {
                    failures.push(format!(
                        "{backend} {} at {connections}: nothing acknowledged",
                        dialect.name()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "the benchmark failed: {failures:#?}");
}
