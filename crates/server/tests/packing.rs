//! The DORA packer reports its rounds in `/metrics`: a server started over a database with a
//! day to pack packs it at once, and says so (`shiplog_dora_days_packed`), then that nothing
//! waits (`shiplog_dora_days_waiting 0`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{MASTER, post, server};

async fn metrics(base: &str) -> String {
    let mut response = awc::Client::default()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
}

#[actix_web::test]
async fn packing_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shiplog.db");
    let first = server(&database).await;
    post(
        format!("{first}/api/v1/workspaces"),
        MASTER,
        json!({"code": "acme"}),
    )
    .await;
    let key = post(
        format!("{first}/api/v1/workspaces/acme/api-keys"),
        MASTER,
        json!({"role": "admin"}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        format!("{first}/api/v1/projects"),
        &key,
        json!({"slug": "shop", "name": "Shop"}),
    )
    .await;
    // A deploy of a day long over: its day waits to be packed.
    post(
        format!("{first}/api/webhooks/ci"),
        &key,
        json!({"event": "deploy.completed", "project_slug": "shop", "status": "success",
               "environment": "production", "finished_at": "2025-03-03T10:00:00Z",
               "url": "https://ci.example/runs/1"}),
    )
    .await;
    // A second server on the same database packs it in its first round.
    let second = server(&database).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(&second).await;
        if text.contains("shiplog_dora_days_packed_total 1\n") {
            assert!(text.contains("shiplog_dora_days_waiting 0\n"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no packing in the metrics: {text}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
