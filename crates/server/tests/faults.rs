//! Faults, with the real `shiplog` binary: SIGKILL of the server under 16 concurrent writers,
//! then a restart. Every event the server acknowledged must be there, once, on SQLite and on
//! PostgreSQL; a client's retry of an acknowledged event finds the same deployment.

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplog_store::testdb::TestDb;

const MASTER: &str = "faults-master-key-0123456789";
const WRITERS: usize = 16;
/// How many acknowledged events to wait for before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 120;

/// A running `shiplog serve`.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(database_url: &str) -> Server {
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("serve")
        .env("SHIPLOG_DATABASE_URL", database_url)
        .env("SHIPLOG_BIND", format!("127.0.0.1:{port}"))
        .env("SHIPLOG_ADMIN_KEY", MASTER)
        .env("SHIPLOG_LOG", "error")
        .env("SHIPLOG_NO_HOOK_WORKER", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    // Wait for it to answer (a condition, with a deadline).
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answered = client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if answered {
            return server;
        }
        assert!(Instant::now() < deadline, "shiplog serve did not start");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(
    client: &awc::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let mut response = client
        .post(url)
        .insert_header(("Authorization", format!("Bearer {key}")))
        .timeout(Duration::from_secs(30))
        .send_json(body)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.body().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Workspace `acme` with an admin key (returned) and project `web`.
async fn bootstrap(client: &awc::Client, base: &str) -> String {
    let (status, _) = post(
        client,
        &format!("{base}/api/v1/workspaces"),
        MASTER,
        &json!({"code": "acme"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    let (_, key) = post(
        client,
        &format!("{base}/api/v1/workspaces/acme/api-keys"),
        MASTER,
        &json!({"name": "ci", "role": "admin"}),
    )
    .await
    .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = post(
        client,
        &format!("{base}/api/v1/projects"),
        &key,
        &json!({"slug": "web"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    key
}

fn event(writer: usize, n: usize) -> Value {
    json!({
        "event": "deploy.completed", "project_slug": "web", "status": "success",
        "environment": "production", "commit_sha": "abc123def456",
        "url": format!("https://ci.example/runs/{writer}-{n}"),
    })
}

/// Every deployment of the workspace, by run URL, with how often each URL appears.
async fn stored(client: &awc::Client, base: &str, key: &str) -> BTreeMap<String, (String, usize)> {
    let mut by_run: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut path = format!("{base}/api/v1/deployments?limit=200");
    loop {
        let mut response = client
            .get(&path)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        let page: Value =
            serde_json::from_slice(&response.body().limit(16 << 20).await.unwrap()).unwrap();
        for item in page["items"].as_array().unwrap() {
            let run = item["run_url"].as_str().unwrap().to_owned();
            let entry = by_run
                .entry(run)
                .or_insert_with(|| (item["id"].as_str().unwrap().to_owned(), 0));
            entry.1 += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}/api/v1/deployments?limit=200&cursor={cursor}"),
            None => return by_run,
        }
    }
}

async fn killed_under_load_loses_nothing(database_url: &str) {
    let client = awc::Client::default();
    let first = serve(database_url).await;
    let base = first.base.clone();
    let key = bootstrap(&client, &base).await;

    // 16 writers, each recording what the server acknowledged, until the server dies.
    let acknowledged: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let acknowledged = Rc::clone(&acknowledged);
        let client = client.clone();
        let url = format!("{base}/api/webhooks/ci");
        let key = key.clone();
        writers.push(actix_web::rt::spawn(async move {
            for n in 0.. {
                match post(&client, &url, &key, &event(writer, n)).await {
                    Ok((200, answer)) => acknowledged.borrow_mut().push((
                        format!("https://ci.example/runs/{writer}-{n}"),
                        answer["deployment_id"].as_str().unwrap().to_owned(),
                    )),
                    Ok((status, answer)) => panic!("{status} before the kill: {answer}"),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.borrow().len() < ACKNOWLEDGED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the writers stalled");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let mut first = first;
    // SIGKILL mid-stream: no flush, no graceful shutdown.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.take();
    assert!(acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL);

    let second = serve(database_url).await;
    let found = stored(&client, &second.base, &key).await;
    for (run, id) in &acknowledged {
        let (stored_id, count) = found
            .get(run)
            .unwrap_or_else(|| panic!("{run} was acknowledged as {id} but is gone"));
        assert_eq!(stored_id, id, "{run}");
        assert_eq!(*count, 1, "{run} stored twice");
    }
    assert!(
        found.values().all(|(_, count)| *count == 1),
        "no run stored twice"
    );
    // A client that retries what was acknowledged gets the same deployment, not a second one.
    for (run, id) in acknowledged.iter().take(20) {
        let (writer, n) = run
            .rsplit('/')
            .next()
            .and_then(|w| w.split_once('-'))
            .map(|(w, n)| (w.parse().unwrap(), n.parse().unwrap()))
            .unwrap();
        let (status, answer) = post(
            &client,
            &format!("{}/api/webhooks/ci", second.base),
            &key,
            &event(writer, n),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["deployment_id"], id.as_str());
    }
    assert_eq!(stored(&client, &second.base, &key).await.len(), found.len());
}

#[test]
fn sigkill_under_16_writers_loses_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shiplog.db").display());
    actix_web::rt::System::new().block_on(killed_under_load_loses_nothing(&url));
}

#[test]
fn sigkill_under_16_writers_loses_nothing_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    actix_web::rt::System::new().block_on(killed_under_load_loses_nothing(db.url()));
}

/// What one request got.
enum Outcome {
    Acknowledged(String),
    Unavailable,
}

/// Sends one event; an answer other than 200, or 503 with `Retry-After` and the documented
/// body, is a failure, and so is no answer within 30 s.
async fn send_during_outage(
    client: &awc::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<Outcome, String> {
    let mut response = client
        .post(url)
        .insert_header(("Authorization", format!("Bearer {key}")))
        .timeout(Duration::from_secs(30))
        .send_json(body)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").is_some();
    let bytes = response.body().await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match status {
        200 => Ok(Outcome::Acknowledged(
            answer["deployment_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )),
        503 if retry_after
            && answer["code"] == "store_unavailable"
            && answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("database is unavailable")) =>
        {
            Ok(Outcome::Unavailable)
        }
        other => Err(format!("{other} (Retry-After: {retry_after}): {answer}")),
    }
}

async fn status_of(client: &awc::Client, url: String) -> u16 {
    client
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits (with a deadline) until `ready` says so.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a fault test does to the database, and undoes.
trait Outage {
    fn start(&self);
    fn end(&self);
}

/// Writers keep sending while `outage` starts and ends: every answer is a 200, or a 503 with
/// `Retry-After` saying the database is unavailable (never a 500, never a hang); meanwhile
/// `/readyz` is 503 and `/healthz` 200; afterwards writes are acknowledged again with no
/// restart, and everything acknowledged is stored once.
async fn outage_under_load(database_url: &str, outage: std::sync::Arc<dyn Outage + Send + Sync>) {
    let client = awc::Client::default();
    let server = serve(database_url).await;
    let base = server.base.clone();
    let key = bootstrap(&client, &base).await;

    let acknowledged: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let unavailable = Rc::new(RefCell::new(0usize));
    let failures: Rc<RefCell<Vec<String>>> = Rc::default();
    let running = Rc::new(RefCell::new(true));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (acknowledged, unavailable, failures, running) = (
            Rc::clone(&acknowledged),
            Rc::clone(&unavailable),
            Rc::clone(&failures),
            Rc::clone(&running),
        );
        let client = client.clone();
        let url = format!("{base}/api/webhooks/ci");
        let key = key.clone();
        writers.push(actix_web::rt::spawn(async move {
            let mut n = 0;
            while *running.borrow() {
                n += 1;
                match send_during_outage(&client, &url, &key, &event(writer, n)).await {
                    Ok(Outcome::Acknowledged(id)) => acknowledged
                        .borrow_mut()
                        .push((format!("https://ci.example/runs/{writer}-{n}"), id)),
                    Ok(Outcome::Unavailable) => {
                        *unavailable.borrow_mut() += 1;
                        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(why) => failures.borrow_mut().push(why),
                }
            }
        }));
    }
    until("acknowledged writes", || acknowledged.borrow().len() >= 50).await;

    let starting = std::sync::Arc::clone(&outage);
    actix_web::rt::task::spawn_blocking(move || starting.start())
        .await
        .unwrap();
    until("503 answers", || *unavailable.borrow() >= 20).await;
    assert_eq!(status_of(&client, format!("{base}/readyz")).await, 503);
    assert_eq!(status_of(&client, format!("{base}/healthz")).await, 200);

    let ending = std::sync::Arc::clone(&outage);
    actix_web::rt::task::spawn_blocking(move || ending.end())
        .await
        .unwrap();
    let after_outage = acknowledged.borrow().len();
    until("writes acknowledged again, with no restart", || {
        acknowledged.borrow().len() >= after_outage + 50
    })
    .await;
    assert_eq!(status_of(&client, format!("{base}/readyz")).await, 200);
    *running.borrow_mut() = false;
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(failures.borrow().is_empty(), "{:?}", failures.borrow());

    let found = stored(&client, &base, &key).await;
    for (run, id) in acknowledged.borrow().iter() {
        let (stored_id, count) = found
            .get(run)
            .unwrap_or_else(|| panic!("{run} was acknowledged as {id} but is gone"));
        assert_eq!(stored_id, id);
        assert_eq!(*count, 1, "{run} stored twice");
    }
    drop(server);
}

impl Outage for shiplog_store::testdb::RestartableCluster {
    fn start(&self) {
        self.stop();
    }

    fn end(&self) {
        self.resume();
    }
}

#[test]
fn postgres_stopped_under_load_answers_503_and_recovers_by_itself() {
    let Some(cluster) = shiplog_store::testdb::RestartableCluster::start() else {
        return;
    };
    let url = cluster.database_url();
    actix_web::rt::System::new().block_on(outage_under_load(&url, std::sync::Arc::new(cluster)));
}

/// An SQLite database whose files cannot be written: the database file and its write-ahead
/// log made immutable (`chattr +i`, which holds even for root). The shared-memory index stays
/// writable: SQLite maps it, and a write to a mapping of an immutable file kills the process
/// with SIGBUS, which no server can answer for.
struct Unwritable(Vec<std::path::PathBuf>);

impl Unwritable {
    fn chattr(&self, flag: &str) -> bool {
        Command::new("chattr")
            .arg(flag)
            .args(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Outage for Unwritable {
    fn start(&self) {
        assert!(self.chattr("+i"), "chattr +i failed");
    }

    fn end(&self) {
        assert!(self.chattr("-i"), "chattr -i failed");
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        self.chattr("-i");
    }
}

#[test]
fn sqlite_made_unwritable_under_load_answers_503_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shiplog.db");
    // Whether this machine can make a file immutable at all (ext4 and root: CI's machine can).
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    let immutable = Unwritable(vec![probe]);
    if !immutable.chattr("+i") {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true and chattr +i does not work here"
        );
        shiplog_store::testdb::skip("chattr +i does not work on this machine");
        return;
    }
    drop(immutable);
    let url = format!("sqlite://{}", file.display());
    let outage = Unwritable(vec![file.clone(), dir.path().join("shiplog.db-wal")]);
    actix_web::rt::System::new().block_on(outage_under_load(&url, std::sync::Arc::new(outage)));
}

/// SIGTERM while a browser keeps the live deployments feed open: the feed ends, a request in
/// flight still gets its answer, and the process exits cleanly, well inside the graceful
/// time-out (30 s) the open stream held it for before.
#[test]
fn sigterm_closes_live_feeds_and_exits_promptly() {
    use futures_util::StreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shiplog.db").display());
    actix_web::rt::System::new().block_on(async move {
        let mut server = serve(&url).await;
        let client = awc::Client::builder().disable_redirects().finish();
        let key = bootstrap(&client, &server.base).await;
        let cookie = common::sign_in(&client, &server.base, &key).await;
        let mut feed = client
            .get(format!("{}/deployments/live", server.base))
            .insert_header(("Cookie", cookie))
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap();
        assert_eq!(feed.status().as_u16(), 200);
        let pid = server.child.id().to_string();
        let signalled = Instant::now();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        // The feed ends (the server closes it) instead of waiting for the browser.
        while let Some(chunk) = feed.next().await {
            if chunk.is_err() {
                break;
            }
        }
        // And the process exits by itself, successfully.
        let deadline = Duration::from_secs(10);
        let status = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                signalled.elapsed() < deadline,
                "still running {deadline:?} after SIGTERM with a live feed open"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{status:?}");
    });
}
