//! Integrations over HTTP, on SQLite and PostgreSQL: creating one shows its secret and webhook
//! URL once; reading never shows the secret; rotation gives a new one; roles and workspaces are
//! kept apart; bad input is named.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

async fn create(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    app.post("/api/v1/integrations", key, body).await
}

async fn an_integration_shows_its_secret_once_and_its_url(app: &TestApp) {
    let (status, created) = create(
        app,
        &app.admin_key,
        json!({"provider": "github", "name": "GitHub acme/shop", "project": "my-project",
               "settings": {"deploy_workflows": {"Deploy": "production"}}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["provider"], "github");
    assert_eq!(created["project"], "my-project");
    assert_eq!(
        created["settings"]["deploy_workflows"]["Deploy"],
        "production"
    );
    assert!(
        created["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/integrations/{id}/webhook")),
        "{created}"
    );
    let (status, listed) = app.get("/api/v1/integrations", &app.admin_key).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret), "{listed}");
    let reader = app.key("read", None).await;
    let (status, one) = app
        .get(&format!("/api/v1/integrations/{id}"), &reader)
        .await;
    assert_eq!(status, 200, "{one}");
    assert!(one.get("secret").is_none(), "{one}");
    assert_eq!(one["previous_secret_valid_until"], Value::Null);

    // Rotation: a new secret, the old one valid a while longer.
    let (status, rotated) = app
        .post(
            &format!("/api/v1/integrations/{id}/rotate-secret"),
            &app.admin_key,
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["secret"], json!(secret));
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );

    let (status, log) = app
        .get(&format!("/api/v1/integrations/{id}/deliveries"), &reader)
        .await;
    assert_eq!((status, log), (200, json!({"items": []})));

    // Deleted: gone, with its log.
    let (status, _, _) = app
        .send(
            "DELETE",
            &format!("/api/v1/integrations/{id}"),
            &[("Authorization", &format!("Bearer {}", app.admin_key))],
            "",
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .get(&format!("/api/v1/integrations/{id}"), &app.admin_key)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "integration_not_found");
}

async fn roles_workspaces_and_bad_input_are_refused(app: &TestApp) {
    let (status, body) = create(
        app,
        &app.admin_key,
        json!({"provider": "bitbucket", "name": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("provider:"),
        "{body}"
    );
    let (status, body) = create(
        app,
        &app.admin_key,
        json!({"provider": "gitlab", "name": ""}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name:"),
        "{body}"
    );
    let (status, body) = create(app, &app.admin_key, json!({"provider": "gitlab"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = create(
        app,
        &app.admin_key,
        json!({"provider": "gitlab", "name": "x", "project": "nowhere"}),
    )
    .await;
    assert_eq!(status, 404);
    let reader = app.key("read", None).await;
    let (status, _) = create(app, &reader, json!({"provider": "gitlab", "name": "x"})).await;
    assert_eq!(status, 403);
    let ingest = app.key("ingest", None).await;
    let (status, _) = app.get("/api/v1/integrations", &ingest).await;
    assert_eq!(status, 403);
    let (status, created) = create(
        app,
        &app.admin_key,
        json!({"provider": "jenkins", "name": "Build farm"}),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    // Another workspace does not see it.
    let other = app.other_workspace("globex").await;
    let (status, _) = app.get(&format!("/api/v1/integrations/{id}"), &other).await;
    assert_eq!(status, 404);
    let (_, listed) = app.get("/api/v1/integrations", &other).await;
    assert_eq!(listed, json!({"items": []}));
    // A key limited to another project does not see a workspace-wide one.
    app.project(&app.admin_key, "billing").await;
    let scoped = app.key("read", Some("billing")).await;
    let (status, _) = app
        .get(&format!("/api/v1/integrations/{id}"), &scoped)
        .await;
    assert_eq!(status, 404);
}

on_both_backends!(
    an_integration_shows_its_secret_once_and_its_url,
    roles_workspaces_and_bad_input_are_refused,
);
