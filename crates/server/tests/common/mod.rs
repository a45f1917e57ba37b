//! What the server's suites share.

/// Signs in to the dashboard of the server at `base` with `key`; returns the session's
/// `Cookie` header value.
pub(crate) async fn sign_in(client: &awc::Client, base: &str, key: &str) -> String {
    let response = client
        .post(format!("{base}/sign-in"))
        .send_form(&[("key", key), ("next", "/")])
        .await
        .unwrap();
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned()
}

/// POSTs `body` as JSON to `url` with `key`; panics unless it answers 2xx; returns the answer.
pub(crate) async fn post(url: String, key: &str, body: serde_json::Value) -> serde_json::Value {
    let mut response = awc::Client::default()
        .post(url)
        .bearer_auth(key)
        .send_json(&body)
        .await
        .unwrap();
    let value: serde_json::Value = response.json().await.unwrap();
    assert!(response.status().is_success(), "{value}");
    value
}

/// Sets up workspace `acme` on the server at `base` (started with [`MASTER`]): an admin key,
/// the project `project` (as `POST /api/v1/projects` takes it) and an ingest key, limited to
/// `ingest_project` when given; returns the admin key and the ingest key.
pub(crate) async fn tenant(
    base: &str,
    project: serde_json::Value,
    ingest_project: Option<&str>,
) -> (String, String) {
    let key = |answer: serde_json::Value| answer["key"].as_str().unwrap().to_owned();
    post(
        format!("{base}/api/v1/workspaces"),
        MASTER,
        serde_json::json!({"code": "acme"}),
    )
    .await;
    let admin = key(post(
        format!("{base}/api/v1/workspaces/acme/api-keys"),
        MASTER,
        serde_json::json!({"role": "admin"}),
    )
    .await);
    post(format!("{base}/api/v1/projects"), &admin, project).await;
    let mut ingest = serde_json::json!({"role": "ingest"});
    if let Some(slug) = ingest_project {
        ingest["project"] = serde_json::json!(slug);
    }
    let ingest = key(post(
        format!("{base}/api/v1/workspaces/acme/api-keys"),
        &admin,
        ingest,
    )
    .await);
    (admin, ingest)
}

/// The master key of the servers [`server`] starts.
pub(crate) const MASTER: &str = "suites-master-key-0123456789";

/// A server on the SQLite file `database`, in this process; returns its address.
pub(crate) async fn server(database: &std::path::Path) -> String {
    server_at(&database.display().to_string()).await
}

/// A server on the database at `url` (SQLite or PostgreSQL), in this process; returns its
/// address.
pub(crate) async fn server_at(url: &str) -> String {
    let running = shiplog_server::start(shiplog_server::Config {
        database_url: url.to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        admin_key: Some(MASTER.to_owned()),
        migrate_on_start: true,
        workers: 1,
        hooks: shiplog_server::HookOptions::default(),
        metrics_token: None,
        tls: None,
        retention: None,
        sign_in: shiplog_server::SignInOptions::default(),
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.address);
    actix_web::rt::spawn(running.server);
    base
}

/// A port nothing listens on now, for a server started as its own process.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
