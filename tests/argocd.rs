//! Argo CD notifications at an integration, on SQLite and PostgreSQL, with the body of the
//! template in docs/ci/argo.md: repeated on-deployed notifications of one sync are one
//! deployment, and a later on-health-degraded of the same sync turns it into a failure.

use serde_json::json;
use shiplog_blackbox::{TestApp, on_both_backends};

fn notification(phase: &str, health: &str, started: &str) -> String {
    json!({
        "app": "shop", "revision": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0",
        "sync_phase": phase, "health": health, "started_at": started,
        "finished_at": started.replace(":00:00Z", ":02:00Z"), "repo_url": "https://github.com/acme/shop.git",
        "environment": "production", "target_revision": "main",
        "commit_timestamp": "2026-11-28T09:00:00Z",
    })
    .to_string()
}

async fn repeated_notifications_of_one_sync_are_one_deployment(app: &TestApp) {
    let (status, created) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "argocd", "name": "Argo CD", "project": "my-project"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let url = format!(
        "/api/v1/integrations/{}/webhook",
        created["id"].as_str().unwrap()
    );
    let token = created["secret"].as_str().unwrap();
    let send = |body: String| {
        let url = url.clone();
        async move {
            app.post_raw(&url, &[("X-Shiplog-Token", token)], body)
                .await
        }
    };
    for _ in 0..3 {
        let (status, answer) =
            send(notification("Succeeded", "Healthy", "2026-11-28T10:00:00Z")).await;
        assert_eq!(status, 200, "{answer}");
    }
    let items = app.deployments().await;
    assert_eq!(
        items.len(),
        1,
        "three on-deployed, one deployment: {items:?}"
    );
    assert_eq!(items[0]["status"], "success");
    assert_eq!(items[0]["provider"], "argo-cd");
    assert_eq!(
        items[0]["commit_sha"],
        "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"
    );
    // The same sync degrades: the deployment failed.
    let (status, _) = send(notification(
        "Succeeded",
        "Degraded",
        "2026-11-28T10:00:00Z",
    ))
    .await;
    assert_eq!(status, 200);
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "failed");
    // A new sync of the same revision is a new deployment.
    let (status, _) = send(notification("Succeeded", "Healthy", "2026-11-28T11:00:00Z")).await;
    assert_eq!(status, 200);
    assert_eq!(app.deployments().await.len(), 2);
    let (status, _) = app
        .post_raw(
            &url,
            &[],
            notification("Succeeded", "Healthy", "2026-11-28T12:00:00Z"),
        )
        .await;
    assert_eq!(status, 401);
}

on_both_backends!(repeated_notifications_of_one_sync_are_one_deployment);
