//! The keys' lifecycle over HTTP, on SQLite and PostgreSQL: list (never a secret), last use,
//! expiry, revocation that takes effect at once; and the listings of workspaces, projects and
//! teams.

use serde_json::{Value, json};
use shiplog_blackbox::{MASTER_KEY, TestApp, on_both_backends};

async fn delete(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    let bearer = format!("Bearer {key}");
    let (status, _, body) = app
        .send("DELETE", path, &[("Authorization", &bearer)], "")
        .await;
    (status, body)
}

async fn a_revoked_key_is_refused_at_once(app: &TestApp) {
    let (status, created) = app
        .post(
            "/api/v1/workspaces/acme/api-keys",
            MASTER_KEY,
            json!({"name": "ci", "role": "read", "expires_at": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = app.get("/api/v1/deployments", &secret).await;
    assert_eq!(status, 200, "the key works");

    let (status, listed) = app
        .get("/api/v1/workspaces/acme/api-keys", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{listed}");
    let text = listed.to_string();
    assert!(!text.contains(&secret), "never the secret: {text}");
    assert!(!text.contains(&app.admin_key), "never the secret: {text}");
    let ci = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(ci["name"], "ci");
    assert_eq!(ci["role"], "read");
    assert_eq!(ci["expires_at"], "2100-01-01T00:00:00Z");
    assert!(ci["last_used_at"].is_string(), "its use was noted: {ci}");
    assert!(ci["hint"].as_str().is_some_and(|h| secret.starts_with(h)));

    let (status, body) = delete(
        app,
        &format!("/api/v1/workspaces/acme/api-keys/{id}"),
        &app.admin_key,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app.get("/api/v1/deployments", &secret).await;
    assert_eq!(status, 401, "revoked: {body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let (status, body) = delete(
        app,
        &format!("/api/v1/workspaces/acme/api-keys/{id}"),
        &app.admin_key,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "key_not_found");

    // An expiry in the past is refused when the key is made.
    let (status, body) = app
        .post(
            "/api/v1/workspaces/acme/api-keys",
            MASTER_KEY,
            json!({"name": "old", "role": "read", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("expires_at")
    );
}

async fn a_revoked_signing_key_is_refused_at_once(app: &TestApp) {
    let (status, created) = app
        .post(
            "/api/v1/workspaces/acme/signing-keys",
            &app.admin_key,
            json!({"name": "envtracker"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, listed) = app
        .get("/api/v1/workspaces/acme/signing-keys", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        !listed
            .to_string()
            .contains(created["secret"].as_str().unwrap())
    );
    assert_eq!(listed["items"][0]["key_id"], created["key_id"]);
    let id = created["id"].as_str().unwrap();
    let (status, _) = delete(
        app,
        &format!("/api/v1/workspaces/acme/signing-keys/{id}"),
        &app.admin_key,
    )
    .await;
    assert_eq!(status, 204);
    let key_id = created["key_id"].as_str().unwrap();
    let (status, _, body) = app
        .put_raw(
            "/webhook/notify",
            &[
                ("X-Webhook-Key", key_id),
                ("X-Webhook-Timestamp", "1700000000"),
                ("X-Webhook-Signature", "sha256=00"),
            ],
            "{}".to_owned(),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unknown_signing_key");
}

async fn keys_are_managed_by_their_own_workspace_admins_only(app: &TestApp) {
    let other = &app.other_workspace("globex").await;
    let (status, _) = app.get("/api/v1/workspaces/acme/api-keys", other).await;
    assert_eq!(status, 404, "another workspace is not found");
    let reader = app.key("read", None).await;
    let (status, _) = app.get("/api/v1/workspaces/acme/api-keys", &reader).await;
    assert_eq!(status, 403, "a read key may not list keys");

    let (status, workspaces) = app.get("/api/v1/workspaces", MASTER_KEY).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = workspaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["acme", "globex"]);
    let (status, _) = app.get("/api/v1/workspaces", &app.admin_key).await;
    assert_eq!(status, 401, "only the master key lists workspaces");
}

async fn projects_and_teams_are_listed(app: &TestApp) {
    for (path, body) in [
        ("/api/v1/projects", json!({"slug": "api", "name": "API"})),
        ("/api/v1/teams", json!({"code": "platform"})),
    ] {
        let (status, answer) = app.post(path, &app.admin_key, body).await;
        assert_eq!(status, 201, "{answer}");
    }
    let (_, projects) = app.get("/api/v1/projects", &app.admin_key).await;
    let slugs: Vec<&str> = projects["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["api", "my-project"]);
    let scoped = app.key("read", Some("my-project")).await;
    let (_, projects) = app.get("/api/v1/projects", &scoped).await;
    assert_eq!(projects["items"].as_array().unwrap().len(), 1, "{projects}");
    let (_, teams) = app.get("/api/v1/teams", &app.admin_key).await;
    assert_eq!(teams["items"][0]["code"], "platform", "{teams}");
}

on_both_backends!(
    a_revoked_key_is_refused_at_once,
    a_revoked_signing_key_is_refused_at_once,
    keys_are_managed_by_their_own_workspace_admins_only,
    projects_and_teams_are_listed,
);
