//! Authentication comes first, on every route of the route table: a request without valid
//! credentials gets its 401 before any body, path or query parameter is looked at, whatever it
//! sends. Unknown paths and methods answer JSON.

use std::time::Duration;

use serde_json::Value;
use shiplog_blackbox::{Backend, TestApp, spawn_app};
use shiplog_http::access::Access;
use shiplog_http::routes::ROUTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The routes anyone may call. Any other route without credentials is a 401.
/// Routes without an API key. An integration's webhook is where a provider posts: its delivery
/// is authenticated by the provider's signature under the integration's secret, checked by
/// `App::receive_integration` before anything of the body is read (tests/github.rs sends forged
/// and unsigned deliveries).
const PUBLIC: [&str; 5] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/integrations/{id}/webhook",
];

/// A route's pattern with every parameter filled by a value its handler would refuse, so a 400
/// or 404 would show that a parameter was looked at before the caller.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "bad%20value%00".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What each kind of missing or wrong credential looks like on the wire.
fn attempts(access: Access) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    match access {
        Access::Public => vec![],
        Access::Signed => vec![
            ("no headers", vec![]),
            (
                "an unknown key id",
                vec![
                    ("X-Webhook-Key", "whk_00000000deadbeef"),
                    ("X-Webhook-Timestamp", "1700000000"),
                    ("X-Webhook-Signature", "sha256=00"),
                ],
            ),
        ],
        Access::Master | Access::Admin | Access::Key => vec![
            ("no key", vec![]),
            (
                "an unknown key",
                vec![("Authorization", "Bearer shiplog_unknown")],
            ),
            ("an unknown token", vec![("X-API-Token", "shiplog_unknown")]),
        ],
    }
}

/// Whether a refusal body says it is about credentials, in any of the APIs' shapes.
fn names_credentials(body: &Value) -> bool {
    let code = body["error"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .unwrap_or_default();
    [
        "missing_credentials",
        "invalid_api_key",
        "unknown_signing_key",
    ]
    .contains(&code)
}

async fn every_keyed_route_authenticates_first(app: &TestApp) {
    let public: Vec<&str> = ROUTES
        .iter()
        .filter(|(_, _, access, _)| *access == Access::Public)
        .map(|(_, path, _, _)| *path)
        .collect();
    assert_eq!(public, PUBLIC, "a route became public: review it");
    let mut checked = 0;
    for (method, pattern, access, _) in ROUTES {
        let path = format!("{}?limit=-1&from=yesterday", concrete(pattern));
        for (what, headers) in attempts(*access) {
            // A body that no handler accepts: only a refusal of the caller comes first.
            let (status, _, body) = app.send(method, &path, &headers, "{\"not\": json").await;
            assert_eq!(status, 401, "{method} {pattern} with {what}: {body}");
            assert!(
                names_credentials(&body),
                "{method} {pattern} with {what} says why in JSON: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked > 2 * ROUTES.len(), "{checked}");
}

async fn unknown_paths_and_methods_answer_json(app: &TestApp) {
    let (status, _, body) = app.send("GET", "/api/v1/nothing-here", &[], "").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let (status, headers, body) = app.send("PATCH", "/api/v1/hooks/abc", &[], "").await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, PUT, DELETE")
    );
    let (status, _, body) = app.send("DELETE", "/healthz", &[], "").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    // What the extractors refuse is JSON too: a query they cannot read, a body over 1 MiB.
    let bearer = format!("Bearer {}", app.admin_key);
    let (status, _, body) = app
        .send(
            "GET",
            "/api/v1/deployments?limit=1&limit=2",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(1_100_000));
    let (status, _, body) = app
        .send(
            "POST",
            "/api/v1/projects",
            &[("Authorization", &bearer)],
            &big,
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
}

/// Clients cannot grow /metrics: random methods and paths add no series.
async fn metrics_labels_come_from_closed_sets(app: &TestApp) {
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("shiplog_http_"))
            .count()
    };
    let metrics = || async {
        let mut response = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap();
        String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
    };
    // One of each kind first, so every closed-set series that can appear exists.
    for (method, path) in [
        ("FROB0", "/nowhere/0"),
        ("GET", "/nowhere/1"),
        ("DELETE", "/healthz"),
    ] {
        app.send(method, path, &[], "").await;
    }
    metrics().await;
    let before = series(&metrics().await);
    for n in 1..200 {
        let method = format!("FROB{n}");
        let path = format!("/random/{n}/path?q={n}");
        let (status, _, _) = app.send(&method, &path, &[], "").await;
        assert!(status >= 400, "{method} {path}: {status}");
        app.send("GET", &path, &[], "").await;
    }
    let text = metrics().await;
    assert_eq!(series(&text), before, "{text}");
    assert!(!text.contains("FROB"), "no client-chosen method is a label");
    assert!(!text.contains("/random/"), "no concrete path is a label");
}

/// Sends `head` (request line and headers, announcing a body) and no body; returns what the
/// server answers, or `None` if it says nothing within `wait`.
async fn announce_and_stall(app: &TestApp, head: &str, wait: Duration) -> Option<String> {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut answer)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&answer[..n]).into_owned()),
        _ => None,
    }
}

/// A client that announces a body and never sends it cannot hold its connection: without a
/// key it is refused before its body is read; with one, the body must come within the limit.
async fn a_stalled_body_does_not_hold_a_connection(app: &TestApp) {
    let head = |auth: &str| {
        format!(
            "POST /api/webhooks/ci HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
    };
    let refused = announce_and_stall(app, &head(""), Duration::from_secs(5))
        .await
        .expect("answered without waiting for the body");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let limit = shiplog_http::payload::BODY_TIMEOUT;
    let auth = format!("Authorization: Bearer {}\r\n", app.admin_key);
    let timed_out = announce_and_stall(app, &head(&auth), limit + Duration::from_secs(10))
        .await
        .expect("answered once the body timeout passed");
    assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
    assert!(timed_out.contains("body_timeout"), "{timed_out}");
}

#[actix_web::test]
async fn a_stalled_body_does_not_hold_a_connection_sqlite() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    a_stalled_body_does_not_hold_a_connection(&app).await;
}

#[actix_web::test]
async fn metrics_labels_come_from_closed_sets_sqlite() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    metrics_labels_come_from_closed_sets(&app).await;
}

#[actix_web::test]
async fn every_keyed_route_authenticates_first_sqlite() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    every_keyed_route_authenticates_first(&app).await;
}

#[actix_web::test]
async fn unknown_paths_and_methods_answer_json_sqlite() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    unknown_paths_and_methods_answer_json(&app).await;
}

/// With `SHIPLOG_METRICS_TOKEN` set, `/metrics` answers only a request carrying it as a bearer
/// token; without it, as before, anyone on the network can read it.
#[actix_web::test]
async fn metrics_can_require_a_bearer_token() {
    let db = shiplog_store::testdb::TestDb::sqlite();
    let running = shiplog_server::start(shiplog_server::Config {
        database_url: db.url().to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        admin_key: Some("metrics-test-master-key-0123".to_owned()),
        migrate_on_start: true,
        workers: 1,
        hooks: shiplog_server::HookOptions::default(),
        metrics_token: Some("metrics-token-0123456789".to_owned()),
        tls: None,
        retention: None,
        sign_in: shiplog_server::SignInOptions::default(),
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.address);
    actix_web::rt::spawn(running.server);
    let client = awc::Client::default();
    for (header, expected) in [
        (None, 401),
        (Some("Bearer wrong-token-0123456789"), 401),
        (Some("Bearer metrics-token-0123456789"), 200),
    ] {
        let mut request = client.get(format!("{base}/metrics"));
        if let Some(header) = header {
            request = request.insert_header(("Authorization", header));
        }
        let mut response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{header:?}");
        let body = response.body().await.unwrap();
        assert_eq!(body.ends_with(b"# EOF\n"), expected == 200, "{header:?}");
    }
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (status, _) = app.get_headers("/metrics").await;
    assert_eq!(status, 200, "no token configured: open as before");
}
