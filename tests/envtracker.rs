//! The Envtracker-compatible signed endpoints, replaying the vendor document's examples, on
//! SQLite and PostgreSQL.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shiplog_blackbox::{MASTER_KEY, TestApp, on_both_backends};
use shiplog_signature::envtracker;

struct SigningKey {
    id: String,
    secret: String,
}

async fn signing_key(app: &TestApp) -> SigningKey {
    let (status, body) = app
        .post(
            "/api/v1/workspaces/acme/signing-keys",
            MASTER_KEY,
            // The brief's contract: a name alone makes an ingest key.
            json!({"name": "pipelines"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "ingest", "{body}");
    SigningKey {
        id: body["key_id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// PUTs `body` signed with `key` at `timestamp`.
async fn put(
    app: &TestApp,
    key: &SigningKey,
    path: &str,
    body: &str,
    timestamp: i64,
) -> (u16, Value) {
    let ts = timestamp.to_string();
    let signature = envtracker::sign(key.secret.as_bytes(), &ts, body.as_bytes());
    let (status, _, answer) = app
        .put_raw(
            path,
            &[
                ("X-Webhook-Key", &key.id),
                ("X-Webhook-Timestamp", &ts),
                ("X-Webhook-Signature", &signature),
            ],
            body.to_owned(),
        )
        .await;
    (status, answer)
}

async fn team(app: &TestApp) {
    let (status, _) = app
        .post(
            "/api/v1/teams",
            &app.admin_key,
            json!({"code": "engineering", "name": "Engineering"}),
        )
        .await;
    assert_eq!(status, 201);
}

/// The document's create-environment example, then its assign-apps and notify examples, in a
/// workspace with two projects (environments belong to the workspace, so create-environment
/// names no project).
async fn the_documented_flow(app: &TestApp) {
    team(app).await;
    let (status, _) = app
        .post(
            "/api/v1/projects",
            &app.admin_key,
            json!({"slug": "other-project", "name": "Other"}),
        )
        .await;
    assert_eq!(status, 201);
    let key = signing_key(app).await;
    let example = r#"{
      "name": "Feature Branch Preview",
      "code": "feature-preview",
      "teamCode": "engineering",
      "url": "https://feature.example.com",
      "position": 3,
      "type": "DEVELOPMENT"
    }"#;
    let (status, body) = put(app, &key, "/webhook/create-environment", example, now()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "feature-preview");
    for (code, kind) in [("production", "PRODUCTION"), ("staging", "STAGING")] {
        let body = json!({"name": code, "code": code, "teamCode": "engineering", "type": kind})
            .to_string();
        assert_eq!(
            put(app, &key, "/webhook/create-environment", &body, now())
                .await
                .0,
            200
        );
    }
    let assign = r#"{
      "projectCode": "my-project",
      "apps": [
        {"repoCode": "my-app", "envs": ["production", "staging"]},
        {"repoCode": "another-service", "envs": ["staging"]}
      ]
    }"#;
    let (status, body) = put(app, &key, "/webhook/assign-apps", assign, now()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assigned"], 3);
    let notify = r#"{
      "projectCode": "my-project",
      "envCode": "production",
      "repoCode": "my-app",
      "pipeline": 456,
      "status": "success",
      "branch": "main",
      "deployDate": "2024-01-15T10:30:00Z"
    }"#;
    let (status, body) = put(app, &key, "/webhook/notify", notify, now()).await;
    assert_eq!(status, 200, "{body}");
    let id = body["deployment_id"].as_str().unwrap();
    let (_, deployment) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["application"], "my-app");
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["external_id"], "456");
    assert_eq!(deployment["branch"], "main");
    assert_eq!(deployment["finished_at"], "2024-01-15T10:30:00Z");

    // Each project's board lists the environments it uses, in position order.
    let (_, board) = app
        .get("/api/v1/projects/my-project/environments", &app.admin_key)
        .await;
    let codes: Vec<&str> = board["environments"]
        .as_array()
        .unwrap_or_else(|| panic!("{board}"))
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["production", "staging"], "{board}");
    let (_, board) = app
        .get(
            "/api/v1/projects/other-project/environments",
            &app.admin_key,
        )
        .await;
    assert_eq!(board["environments"], json!([]), "{board}");
}

async fn authentication_failures_say_which(app: &TestApp) {
    let key = signing_key(app).await;
    let body = r#"{"projectCode": "my-project", "apps": []}"#;
    let (status, _, answer) = app
        .put_raw("/webhook/assign-apps", &[], body.to_owned())
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("missing_credentials"))
    );
    let wrong = SigningKey {
        id: key.id.clone(),
        secret: "not-the-secret".into(),
    };
    let (status, answer) = put(app, &wrong, "/webhook/assign-apps", body, now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, answer) = put(app, &key, "/webhook/assign-apps", body, now() - 400).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("expired_timestamp"))
    );
    let unknown = SigningKey {
        id: "whk_0000000000000000".into(),
        secret: key.secret.clone(),
    };
    let (status, answer) = put(app, &unknown, "/webhook/assign-apps", body, now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unknown_signing_key"))
    );

    // Key rotation: several signatures, one of them right.
    let ts = now().to_string();
    let good = envtracker::sign(key.secret.as_bytes(), &ts, body.as_bytes());
    let old = envtracker::sign(b"old-secret", &ts, body.as_bytes());
    let (status, _, answer) = app
        .put_raw(
            "/webhook/assign-apps",
            &[
                ("X-Webhook-Key", &key.id),
                ("X-Webhook-Timestamp", &ts),
                ("X-Webhook-Signature", &format!("{old} {good}")),
            ],
            body.to_owned(),
        )
        .await;
    assert_eq!(
        status, 400,
        "authenticated; an empty apps list is an invalid payload: {answer}"
    );
}

async fn forbidden_and_invalid_requests(app: &TestApp) {
    team(app).await;
    let key = signing_key(app).await;
    let env = |code: &str, team: &str| {
        json!({"name": code, "code": code, "teamCode": team, "type": "STAGING"}).to_string()
    };
    let (status, body) = put(
        app,
        &key,
        "/webhook/create-environment",
        &env("staging", "nobody"),
        now(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("team_not_found"))
    );
    assert_eq!(
        put(
            app,
            &key,
            "/webhook/create-environment",
            &env("staging", "engineering"),
            now()
        )
        .await
        .0,
        200
    );
    let (status, body) = put(
        app,
        &key,
        "/webhook/create-environment",
        &env("staging", "engineering"),
        now(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("environment_exists"))
    );
    let bad_type =
        json!({"name": "x", "code": "x", "teamCode": "engineering", "type": "PROD"}).to_string();
    let (status, body) = put(app, &key, "/webhook/create-environment", &bad_type, now()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("type: unknown environment type"),
        "{body}"
    );

    let notify = |project: &str, env: &str, app_code: &str| {
        json!({"projectCode": project, "envCode": env, "repoCode": app_code, "pipeline": 1, "status": "success"}).to_string()
    };
    let (status, body) = put(
        app,
        &key,
        "/webhook/notify",
        &notify("nope", "staging", "my-app"),
        now(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("project_not_found"))
    );
    let assign =
        r#"{"projectCode": "my-project", "apps": [{"repoCode": "my-app", "envs": ["staging"]}]}"#;
    assert_eq!(
        put(app, &key, "/webhook/assign-apps", assign, now())
            .await
            .0,
        200
    );
    let (status, body) = put(
        app,
        &key,
        "/webhook/notify",
        &notify("my-project", "qa", "my-app"),
        now(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("create it first"),
        "{body}"
    );
    let (status, body) = put(
        app,
        &key,
        "/webhook/notify",
        &notify("my-project", "staging", "ghost"),
        now(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("application_not_found"))
    );
    let nowhere =
        r#"{"projectCode": "my-project", "apps": [{"repoCode": "my-app", "envs": ["nowhere"]}]}"#;
    let (status, body) = put(app, &key, "/webhook/assign-apps", nowhere, now()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("environment_not_found"))
    );
}

async fn the_legacy_path_answers_like_notify_and_points_to_its_successor(app: &TestApp) {
    team(app).await;
    let key = signing_key(app).await;
    let env = json!({"name": "production", "code": "production", "teamCode": "engineering", "type": "PRODUCTION"}).to_string();
    assert_eq!(
        put(app, &key, "/webhook/create-environment", &env, now())
            .await
            .0,
        200
    );
    let assign = r#"{"projectCode": "my-project", "apps": [{"repoCode": "my-app", "envs": ["production"]}]}"#;
    assert_eq!(
        put(app, &key, "/webhook/assign-apps", assign, now())
            .await
            .0,
        200
    );
    let body = r#"{
      "pipeline": 456,
      "status": "success",
      "gitTracking": {
        "branch": "main"
      },
      "deployDate": "2024-01-15T10:30:00Z"
    }"#;
    let ts = now().to_string();
    let signature = envtracker::sign(key.secret.as_bytes(), &ts, body.as_bytes());
    let (status, headers, answer) = app
        .put_raw(
            "/v1/company/acme/project/my-project/applications/my-app/env/production",
            &[
                ("X-Webhook-Key", &key.id),
                ("X-Webhook-Timestamp", &ts),
                ("X-Webhook-Signature", &signature),
            ],
            body.to_owned(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers.get("deprecation").unwrap(), "true");
    assert_eq!(
        headers.get("link").unwrap(),
        "</webhook/notify>; rel=\"successor-version\""
    );
    let (status, headers, _) = app
        .put_raw(
            "/v1/company/globex/project/my-project/applications/my-app/env/production",
            &[
                ("X-Webhook-Key", &key.id),
                ("X-Webhook-Timestamp", &ts),
                ("X-Webhook-Signature", &signature),
            ],
            body.to_owned(),
        )
        .await;
    assert_eq!(status, 403, "another company");
    assert!(headers.get("deprecation").is_some());
}

on_both_backends!(
    the_documented_flow,
    authentication_failures_say_which,
    forbidden_and_invalid_requests,
    the_legacy_path_answers_like_notify_and_points_to_its_successor,
);
