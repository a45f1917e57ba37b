//! The Hivel-compatible `POST /api/hooks/v2/deployment`, replaying the vendor document's example
//! verbatim, on SQLite and PostgreSQL.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

/// The document's example request body, verbatim.
const EXAMPLE: &str = r#"{
    "deployment_id": "deploy-20250922-1200",
    "event_type": "completed",
    "status": "success",
    "repo_url": "https://github.com/hivelai/webhook-logger",
    "commit_hash": "abc123def456789012345678901234567890abcd",
    "environment": "production",
    "start_time": "2025-09-22T12:00:00Z",
    "end_time": "2025-09-22T12:15:30Z",
    "branch": "main",
    "build_number": "12345",
    "pr_number": "71",
    "pr_numbers": [71,35,23],
    "image": "company/api-service:v1.2.3",
    "logs_url": "https://logs.example.com/deploy/20250922-1200"
  }"#;

async fn send(app: &TestApp, token: &str, body: &str) -> (u16, Value) {
    app.post_raw(
        "/api/hooks/v2/deployment",
        &[("X-API-Token", token)],
        body.to_owned(),
    )
    .await
}

fn with(changes: Value) -> String {
    let mut body: Value = serde_json::from_str(EXAMPLE).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value.clone();
        }
    }
    body.to_string()
}

async fn the_documented_example(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    let (status, body) = send(app, &token, EXAMPLE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Deployment event stored successfully", "deployment_id": "deploy-20250922-1200", "success": true})
    );
    let (_, page) = app.get("/api/v1/deployments", &app.admin_key).await;
    let deployment = &page["items"][0];
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["external_id"], "deploy-20250922-1200");
    assert_eq!(
        deployment["application"], "webhook-logger",
        "created from the repository on first use"
    );
    assert_eq!(deployment["started_at"], "2025-09-22T12:00:00Z");
    assert_eq!(deployment["finished_at"], "2025-09-22T12:15:30Z");
    assert_eq!(deployment["build_number"], "12345");
    assert_eq!(deployment["image"], "company/api-service:v1.2.3");
    let keys: Vec<&str> = deployment["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["#71", "#35", "#23"]);
}

/// shiplog's extension, which the Argo CD guide sends: the commit's own time.
async fn a_commit_timestamp_dates_the_commit(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    let body = with(json!({"commit_timestamp": "2025-09-22T11:00:00+02:00"}));
    let (status, answer) = send(app, &token, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (_, page) = app.get("/api/v1/deployments", &app.admin_key).await;
    assert_eq!(page["items"][0]["commit_timestamp"], "2025-09-22T09:00:00Z");
}

async fn the_same_id_twice_is_one_record_and_another_payload_is_a_conflict(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    assert_eq!(send(app, &token, EXAMPLE).await.0, 200);
    let (status, body) = send(app, &token, EXAMPLE).await;
    assert_eq!(status, 200, "the same payload again: {body}");
    let (status, body) = send(app, &token, &with(json!({"status": "failed"}))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "idempotency_conflict");
    let (_, page) = app.get("/api/v1/deployments", &app.admin_key).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["status"], "success");
}

async fn both_timestamp_formats_and_status_normalization(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    let mut expected_statuses = Vec::new();
    for (n, start, end, status, expected) in [
        (
            1,
            json!(1700385632),
            json!(1700385932),
            "SUCCESS",
            "success",
        ),
        (
            2,
            json!("1700385632846"),
            json!("1700385932846"),
            "timed_out",
            "failed",
        ),
        (
            3,
            json!("2025-11-19T10:20:32.846Z"),
            json!("2025-11-19T10:25:32Z"),
            "Succeeded/Healthy",
            "success",
        ),
        (
            4,
            json!(1700385632),
            json!(1700385932),
            "running",
            "unknown",
        ),
    ] {
        let body = with(
            json!({"deployment_id": format!("d-{n}"), "start_time": start, "end_time": end, "status": status}),
        );
        let (code, answer) = send(app, &token, &body).await;
        assert_eq!(code, 200, "{n}: {answer}");
        expected_statuses.push(expected);
    }
    let (_, page) = app
        .get("/api/v1/deployments?limit=10", &app.admin_key)
        .await;
    // Listed by their own times (the listing's order is tested elsewhere): found by their ids.
    let by_id = |n: u32| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["external_id"] == format!("d-{n}"))
            .unwrap_or_else(|| panic!("d-{n} is listed: {page}"))
            .clone()
    };
    let statuses: Vec<String> = (1..=4)
        .map(|n| by_id(n)["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, expected_statuses, "d-1 to d-4");
    assert_eq!(by_id(1)["started_at"], "2023-11-19T09:20:32Z");
    assert_eq!(by_id(2)["started_at"], "2023-11-19T09:20:32.846Z");
}

async fn validation_errors_in_hivels_words(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    let (status, body) = send(
        app,
        &token,
        &with(json!({"start_time": "2025-09-22T13:00:00Z"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"message": "Validation failed", "error": "Start time cannot be after end time"})
    );
    for field in [
        "deployment_id",
        "event_type",
        "status",
        "start_time",
        "end_time",
        "repo_url",
        "environment",
        "branch",
    ] {
        let (status, body) = send(app, &token, &with(json!({ field: null }))).await;
        assert_eq!(status, 400, "{field}");
        assert_eq!(body["error"], format!("{field} is required"));
    }
    let (status, body) = send(app, &token, &with(json!({"event_type": "started"}))).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("event_type must be \"completed\""),
        "{body}"
    );
    let (status, body) = send(app, &token, &with(json!({"end_time": "soon"}))).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("end_time: "),
        "{body}"
    );
    let (status, _) = send(app, "wrong", EXAMPLE).await;
    assert_eq!(status, 401);
}

async fn an_unscoped_key_finds_the_project_by_repository(app: &TestApp) {
    let unscoped = app.key("ingest", None).await;
    let (status, body) = send(app, &unscoped, EXAMPLE).await;
    assert_eq!(status, 400, "the repository is not registered yet: {body}");
    assert_eq!(body["code"], "project_required");
    let scoped = app.key("ingest", Some("my-project")).await;
    assert_eq!(
        send(app, &scoped, &with(json!({"deployment_id": "first"})))
            .await
            .0,
        200
    );
    let (status, body) = send(
        app,
        &unscoped,
        &with(json!({"repo_url": "git@github.com:hivelai/webhook-logger.git"})),
    )
    .await;
    assert_eq!(
        status, 200,
        "registered by the first event, in another spelling: {body}"
    );
}

/// Hivel's fields go through the same one-line rule.
async fn control_characters_are_refused_naming_the_field(app: &TestApp) {
    let token = app.key("ingest", Some("my-project")).await;
    let body = with(json!({"branch": "main\u{1b}]0;owned\u{7}"}));
    let (status, answer) = send(app, &token, &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("branch"), "{answer}");
}

on_both_backends!(
    a_commit_timestamp_dates_the_commit,
    the_documented_example,
    the_same_id_twice_is_one_record_and_another_payload_is_a_conflict,
    both_timestamp_formats_and_status_normalization,
    validation_errors_in_hivels_words,
    an_unscoped_key_finds_the_project_by_repository,
    control_characters_are_refused_naming_the_field,
);
