//! `shiplog backup` and `shiplog restore`, run as the real binary: a backup taken while a
//! server keeps taking ingests holds every deployment acknowledged before it started, passes
//! SQLite's integrity check, and, restored under a new server, gives the same DORA figures as
//! the source for a window the later ingests do not touch. Refusals say what to do.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::{MASTER, server};

fn shiplog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .args(args)
        .env_remove("SHIPLOG_DATABASE_URL")
        .output()
        .unwrap()
}

async fn call(method: &str, url: String, key: &str, body: Option<Value>) -> (u16, Value) {
    let client = awc::Client::default();
    let request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .bearer_auth(key);
    let mut response = match body {
        Some(body) => request.send_json(&body).await.unwrap(),
        None => request.send().await.unwrap(),
    };
    let status = response.status().as_u16();
    let body = response.json::<Value>().limit(1 << 20).await.unwrap();
    (status, body)
}

async fn dora(base: &str, key: &str) -> Value {
    let (status, body) = call(
        "GET",
        format!(
            "{base}/api/v1/metrics/dora?project=shop&from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z"
        ),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[actix_web::test]
async fn a_backup_under_load_restores_every_acknowledged_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    let base = server(&source).await;
    let (status, _) = call(
        "POST",
        format!("{base}/api/v1/workspaces"),
        MASTER,
        Some(json!({"code": "acme"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, key) = call(
        "POST",
        format!("{base}/api/v1/workspaces/acme/api-keys"),
        MASTER,
        Some(json!({"role": "admin"})),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = call(
        "POST",
        format!("{base}/api/v1/projects"),
        &key,
        Some(json!({"slug": "shop", "name": "Shop"})),
    )
    .await;
    assert_eq!(status, 201);

    // Deploys keep arriving, one after the other: January's before the backup starts, March's
    // from then on (so January's DORA figures are the backup's to match).
    let acknowledged: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let backing_up = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (base, key) = (base.clone(), key.clone());
        let (acknowledged, backing_up, stop) =
            (acknowledged.clone(), backing_up.clone(), stop.clone());
        actix_web::rt::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let month = if backing_up.load(Ordering::SeqCst) {
                    "03"
                } else {
                    "01"
                };
                let status = if n.is_multiple_of(5) {
                    "failure"
                } else {
                    "success"
                };
                let (code, answer) = call(
                    "POST",
                    format!("{base}/api/webhooks/ci"),
                    &key,
                    Some(json!({"event": "deploy.completed", "project_slug": "shop",
                        "status": status, "environment": "production",
                        "commit_sha": format!("{n:040x}"),
                        "finished_at": format!("2025-{month}-{:02}T{:02}:00:00Z", 1 + n % 28, n % 24),
                        "url": format!("https://ci.example/runs/{n}")})),
                )
                .await;
                assert_eq!(code, 200, "{answer}");
                acknowledged.lock().unwrap().push((
                    answer["deployment_id"].as_str().unwrap().to_owned(),
                    month == "03",
                ));
            }
            n
        })
    };
    while acknowledged.lock().unwrap().len() < 60 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    backing_up.store(true, Ordering::SeqCst);
    // Once a March deploy is acknowledged, every January one is (they go one at a time).
    while !acknowledged.lock().unwrap().iter().any(|(_, march)| *march) {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, march)| !march)
        .map(|(id, _)| id.clone())
        .collect();
    let backup = dir.path().join("backup.db");
    let source_arg = source.display().to_string();
    let backup_arg = backup.display().to_string();
    let made = actix_web::rt::task::spawn_blocking(move || {
        shiplog(&["backup", "--database-url", &source_arg, "--to", &backup_arg])
    })
    .await
    .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert!(
        String::from_utf8_lossy(&made.stdout).contains("integrity check ok"),
        "{made:?}"
    );
    // Ingest went on during the backup.
    let during = acknowledged.lock().unwrap().len();
    while acknowledged.lock().unwrap().len() < during + 10 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();

    // A second backup never overwrites the first.
    let again = shiplog(&[
        "backup",
        "--database-url",
        &source.display().to_string(),
        "--to",
        &backup.display().to_string(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let restored = dir.path().join("restored.db");
    let put = shiplog(&[
        "restore",
        "--from",
        &backup.display().to_string(),
        "--database-url",
        &restored.display().to_string(),
    ]);
    assert!(put.status.success(), "{put:?}");
    let copy = server(&restored).await;
    for id in &before {
        let (status, body) =
            call("GET", format!("{copy}/api/v1/deployments/{id}"), &key, None).await;
        assert_eq!(
            status, 200,
            "{id} was acknowledged before the backup: {body}"
        );
    }
    let (january, restored_january) = (dora(&base, &key).await, dora(&copy, &key).await);
    assert_eq!(
        january["deployment_frequency"]["samples"].as_u64().unwrap()
            + january["change_failure_rate"]["failed_deployments"]
                .as_u64()
                .unwrap(),
        u64::try_from(before.len()).unwrap(),
        "{january}"
    );
    assert_eq!(january, restored_january);
}

#[actix_web::test]
async fn refusals_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("x.db").display().to_string();
    let postgres = shiplog(&[
        "backup",
        "--database-url",
        "postgres://shiplog@127.0.0.1:1/shiplog",
        "--to",
        &to,
    ]);
    assert!(!postgres.status.success());
    assert!(
        String::from_utf8_lossy(&postgres.stderr).contains("pg_dump --format=custom"),
        "{postgres:?}"
    );
    let broken = dir.path().join("broken.db");
    std::fs::write(&broken, b"not a database, only bytes that say so").unwrap();
    let target = dir.path().join("target.db").display().to_string();
    let refused = shiplog(&[
        "restore",
        "--from",
        &broken.display().to_string(),
        "--database-url",
        &target,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a readable SQLite database"),
        "{refused:?}"
    );
    assert!(!Path::new(&target).exists(), "nothing is put in place");
}
