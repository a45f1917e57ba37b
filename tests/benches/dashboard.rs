//! `cargo xtask bench dashboard`: how long the server takes to answer the dashboard's busiest
//! pages over the `cargo xtask bench dora` history (1,000,000 deployments), on each backend.
//!
//! Each page goes through the dashboard's actix service in-process (no socket): the session
//! check, the use case's store reads, and the HTML rendering, which is the server-side time a
//! browser waits for. Pages: the overview, the environments board of the project (50
//! applications × 4 environments), the first page of the deployments list, a filtered list
//! (production, failed), the newest successful deployment's page (with what it changed), the
//! DORA page over 30 and 365 days (with the previous period and the breakdown) and the
//! deployments behind its 30-day figures. Prints p50 and p90 of `SHIPLOG_BENCH_RUNS` timed runs (default 15) and the page's
//! size.
//!
//! The DORA days are packed first, as a running server's packer does in the background.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs as a smoke test on 20,000
//! deployments. `SHIPLOG_BENCH_BACKENDS` and `SHIPLOG_BENCH_DEPLOYMENTS` as for `bench dora`;
//! `SHIPLOG_BENCH_PAGES` times only the pages whose name contains it (e.g. `DORA`).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../../crates/store-diesel/tests/support/mod.rs"]
mod support;

#[path = "../../crates/store-diesel/benches/seed/mod.rs"]
mod seed;

use std::time::Instant;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use diesel::connection::SimpleConnection;
use seed::percentile;
use shiplog_app::admin::{CreateApiKey, WorkspaceAdmin};
use shiplog_domain::ids::WorkspaceCode;
use shiplog_domain::key::Role;
use shiplog_store::DatabaseUrl;
use shiplog_web::WebState;
use support::{app, open, tenant};

const PAGES: [(&str, &str); 8] = [
    ("overview", "/"),
    ("board", "/projects/web"),
    ("deployments", "/deployments"),
    (
        "deployments, production, failed",
        "/deployments?environment=production&status=failed",
    ),
    ("a deployment (the newest success)", "/deployments/{newest}"),
    ("DORA, 30 days", "/dora?project=web&days=30"),
    ("DORA, 365 days", "/dora?project=web&days=365"),
    (
        "behind the DORA figures, 30 days",
        "/dora/deployments?project=web&days=30",
    ),
];

fn main() {
    let backends =
        std::env::var("SHIPLOG_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let (n, runs) = seed::sizes();
    let only = std::env::var("SHIPLOG_BENCH_PAGES").unwrap_or_default();
    println!(
        "machine: {} cores; {n} deployments over 730 days; {runs} timed runs per page",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    println!("| backend | page | p50 | p90 | HTML bytes |");
    println!("|---|---|---|---|---|");
    actix_web::rt::System::new().block_on(async move {
        for backend in backends.split(',').map(str::trim) {
            let Some(db) = seed::database(backend, 3) else {
                continue;
            };
            let store = open(db.url());
            let t = tenant(&store, "bench", 1).await;
            let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
            conn.batch_execute(&seed::seed_sql(
                &t.workspace.to_string(),
                &t.project.to_string(),
                n,
            ))
            .unwrap();
            // Pack every past day, as a running server's background packer does within
            // minutes of an import (docs/benchmarks.md, "DORA days packed").
            let now =
                shiplog_domain::timestamp::Timestamp::from_offset(time::OffsetDateTime::now_utc())
                    .unwrap();
            let days = support::pack_all(&store, now).await;
            assert!(days > 0, "days were packed");
            if backend == "postgres" {
                conn.batch_execute("VACUUM ANALYZE").unwrap();
            }
            let app = app(&store);
            let key = app
                .create_api_key(
                    WorkspaceAdmin::Key(&t.admin),
                    &WorkspaceCode::parse("bench").unwrap(),
                    CreateApiKey {
                        name: "bench".into(),
                        role: Role::Read,
                        project: None,
                        expires_at: None,
                    },
                )
                .await
                .unwrap();
            let newest = app
                .list_deployments(
                    &app.authenticate(Some(key.secret.reveal())).await.unwrap(),
                    shiplog_app::deployments::ListDeployments {
                        status: Some(shiplog_domain::status::DeploymentStatus::Success),
                        limit: Some(1),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .items[0]
                .id
                .to_string();
            let session = app.sign_in(Some(key.secret.reveal()), None).await.unwrap();
            let cookie = format!("shiplog_session={}", session.secret.reveal());
            let service = init_service(actix_web::App::new().configure(shiplog_web::configure(
                WebState {
                    app,
                    public_url: None,
                    changes: std::sync::Arc::default(),
                },
            )))
            .await;
            for (name, path) in PAGES.into_iter().filter(|(name, _)| name.contains(&*only)) {
                let path = path.replace("{newest}", &newest);
                let path = path.as_str();
                let mut size = 0;
                let mut times = Vec::with_capacity(runs);
                for run in 0..=runs {
                    let request = TestRequest::get()
                        .uri(path)
                        .insert_header(("cookie", cookie.as_str()))
                        .to_request();
                    let started = Instant::now();
                    let response = call_service(&service, request).await;
                    let status = response.status();
                    let body = read_body(response).await;
                    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                    let elapsed = started.elapsed();
                    assert!(body.len() > 1000, "{path} rendered a page");
                    size = body.len();
                    // The first run warms the caches and is not counted.
                    if run > 0 {
                        times.push(elapsed);
                    }
                }
                times.sort();
                println!(
                    "| {backend} | {name} | {:.1} ms | {:.1} ms | {size} |",
                    percentile(&times, 50).as_secs_f64() * 1e3,
                    percentile(&times, 90).as_secs_f64() * 1e3,
                );
            }
        }
    });
}
