//! Every ingest route against mutated payloads, on SQLite and PostgreSQL: each top-level field of
//! a valid body replaced by text holding U+0000, by other types, by odd text. A client's mistake
//! is never a 5xx, and text holding U+0000 is a 400 that names the field, identically on both
//! backends (PostgreSQL refuses such text, SQLite would store it).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shiplog_blackbox::{MASTER_KEY, TestApp, on_both_backends};
use shiplog_signature::envtracker;

/// A valid body per route; the same run each time, so a success is idempotent.
fn bodies() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/webhooks/ci",
            json!({
                "event": "deploy.completed", "project_slug": "my-project", "status": "success",
                "ref": "refs/heads/main", "commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b",
                "commit_message": "feat: login #PR-1", "environment": "production",
                "url": "https://ci.example/runs/1", "deployed_by": "ana",
                "started_at": "2025-03-01T10:00:00Z", "finished_at": "2025-03-01T10:05:00Z",
            }),
        ),
        (
            "/api/hooks/v2/deployment",
            json!({
                "deployment_id": "deploy-1", "event_type": "completed", "status": "success",
                "repo_url": "https://github.com/acme/web", "environment": "production",
                "commit_hash": "abc123def456789012345678901234567890abcd",
                "start_time": "2025-03-01T10:00:00Z", "end_time": "2025-03-01T10:05:00Z",
                "branch": "main", "build_number": "7", "pr_numbers": [1, 2],
            }),
        ),
        (
            "/webhook/notify",
            json!({
                "projectCode": "my-project", "envCode": "production", "repoCode": "my-project",
                "pipeline": 456, "status": "success", "branch": "main",
                "deployDate": "2024-01-15T10:30:00Z",
            }),
        ),
    ]
}

/// What replaces a field: `true` for text that holds U+0000.
fn variants() -> Vec<(Value, bool)> {
    vec![
        (json!("\u{0}"), true),
        (json!("main\u{0}x"), true),
        (json!(["ok", "\u{0}"]), true),
        (json!(12345), false),
        (json!(-1.5), false),
        (json!(true), false),
        (json!(null), false),
        (json!([]), false),
        (json!({"nested": {"deep": [1, "two"]}}), false),
        (json!(""), false),
        (json!("   "), false),
        (json!("ｐroduction"), false),
        (json!("x".repeat(5000)), false),
        (json!("9999-12-31T23:59:59Z"), false),
        (json!("'; DROP TABLE deployments; --"), false),
    ]
}

fn now() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// The credentials: a signing key (id, secret) and an ingest key limited to `my-project`.
struct Keys {
    signing: (String, String),
    ingest: String,
}

async fn send(app: &TestApp, keys: &Keys, path: &str, body: &str) -> (u16, Value) {
    let signing = &keys.signing;
    if path.starts_with("/webhook/") {
        let ts = now();
        let signature = envtracker::sign(signing.1.as_bytes(), &ts, body.as_bytes());
        let (status, _, answer) = app
            .put_raw(
                path,
                &[
                    ("X-Webhook-Key", &signing.0),
                    ("X-Webhook-Timestamp", &ts),
                    ("X-Webhook-Signature", &signature),
                ],
                body.to_owned(),
            )
            .await;
        (status, answer)
    } else {
        let bearer = format!("Bearer {}", keys.ingest);
        app.post_raw(path, &[("Authorization", &bearer)], body.to_owned())
            .await
    }
}

async fn mutated_payloads_are_never_a_server_error(app: &TestApp) {
    let (status, key) = app
        .post(
            "/api/v1/workspaces/acme/signing-keys",
            MASTER_KEY,
            json!({"name": "fuzz"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let keys = Keys {
        signing: (
            key["key_id"].as_str().unwrap().to_owned(),
            key["secret"].as_str().unwrap().to_owned(),
        ),
        ingest: app.key("ingest", Some("my-project")).await,
    };
    let mut sent = 0;
    for (path, valid) in bodies() {
        let (status, answer) = send(app, &keys, path, &valid.to_string()).await;
        assert_eq!(status, 200, "{path} accepts the valid body: {answer}");
        for field in valid.as_object().unwrap().keys() {
            for (replacement, holds_nul) in variants() {
                let mut body = valid.clone();
                body[field] = replacement.clone();
                let (status, answer) = send(app, &keys, path, &body.to_string()).await;
                sent += 1;
                assert!(
                    status < 500,
                    "{path} {field} = {replacement}: {status} {answer}"
                );
                if holds_nul {
                    assert_eq!(status, 400, "{path} {field} = {replacement}: {answer}");
                    assert!(
                        answer.to_string().contains(field.as_str()),
                        "{path} {field}: the answer names the field: {answer}"
                    );
                }
            }
        }
    }
    assert!(sent > 300, "{sent}");
    // Nothing holding U+0000 was stored anywhere.
    let (_, page) = app
        .get("/api/v1/deployments?limit=200", &app.admin_key)
        .await;
    assert!(!page.to_string().contains("\\u0000"), "{page}");
}

on_both_backends!(mutated_payloads_are_never_a_server_error);
