//! Faults, with the real `shiplog` binary: SIGKILL of the server under 16 concurrent writers,
//! then a restart. Every event the server acknowledged must be there, once, on SQLite and on
//! PostgreSQL; a client's retry of an acknowledged event finds the same deployment.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplog_store::testdb::TestDb;

const MASTER: &str = "faults-master-key-0123456789";
const WRITERS: usize = 16;
/// How many acknowledged events to wait for before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 120;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

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
    let port = free_port();
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
    let (status, _) = post(
        &client,
        &format!("{base}/api/v1/workspaces"),
        MASTER,
        &json!({"code": "acme"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    let (_, key) = post(
        &client,
        &format!("{base}/api/v1/workspaces/acme/api-keys"),
        MASTER,
        &json!({"name": "ci", "role": "admin"}),
    )
    .await
    .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &client,
        &format!("{base}/api/v1/projects"),
        &key,
        &json!({"slug": "web"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);

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
