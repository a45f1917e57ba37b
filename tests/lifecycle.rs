//! Deletions and the audit log over HTTP, on both backends: who may delete what, what a
//! deletion answers, that another workspace's records cannot be reached, and that every
//! deletion and every key, hook and integration change is in `GET /api/v1/audit` with who,
//! what, when and from which address.

use serde_json::{Value, json};
use shiplog_blackbox::{MASTER_KEY, TestApp, on_both_backends};

async fn delete(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    let (status, _, body) = app
        .send(
            "DELETE",
            path,
            &[("Authorization", &format!("Bearer {key}"))],
            "",
        )
        .await;
    (status, body)
}

fn event(environment: &str, run: u32, application: &str) -> Value {
    json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": "success",
        "environment": environment, "application": application,
        "commit_sha": format!("{run:0>40x}"), "url": format!("https://ci.example/runs/{run}"),
    })
}

async fn admins_delete_what_they_may_and_the_audit_log_says_so(app: &TestApp) {
    let admin = app.admin_key.clone();
    let first = app.clienwork(&admin, event("production", 1, "api")).await;
    let second = app.clienwork(&admin, event("production", 2, "api")).await;
    app.clienwork(&admin, event("preview", 3, "web")).await;
    let other = app.other_workspace("other").await;
    let (status, body) = app
        .post(
            "/api/v1/projects",
            &other,
            json!({"slug": "my-project", "name": "Theirs"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let theirs = app.clienwork(&other, event("production", 1, "api")).await;

    // Who may not: a read key (403), another workspace's admin (404, and it stays).
    let reader = app.key("read", None).await;
    assert_eq!(
        delete(app, &format!("/api/v1/deployments/{first}"), &reader)
            .await
            .0,
        403
    );
    let (status, body) = delete(app, &format!("/api/v1/deployments/{theirs}"), &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("deployment_not_found"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{theirs}"), &other)
            .await
            .0,
        200
    );
    // A key limited to the project may not delete an environment the workspace shares.
    let limited = app.key("admin", Some("my-project")).await;
    let (status, body) = delete(app, "/api/v1/environments/preview", &limited).await;
    assert_eq!(status, 403, "{body}");
    // Nor read the audit log, which is the whole workspace's.
    assert_eq!(app.get("/api/v1/audit", &limited).await.0, 403);

    // A deployment.
    assert_eq!(
        delete(app, &format!("/api/v1/deployments/{first}"), &admin)
            .await
            .0,
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{first}"), &admin)
            .await
            .0,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{second}"), &admin)
            .await
            .0,
        200
    );
    assert_eq!(
        delete(app, &format!("/api/v1/deployments/{first}"), &admin)
            .await
            .0,
        404
    );
    // An environment: its deployments go, the board no longer shows it.
    assert_eq!(
        delete(app, "/api/v1/environments/preview", &admin).await.0,
        204
    );
    let (_, board) = app
        .get("/api/v1/projects/my-project/environments", &admin)
        .await;
    assert!(!board.to_string().contains("preview"), "{board}");
    assert_eq!(app.deployments().await.len(), 1);
    // An application.
    let (_, applications) = app
        .get("/api/v1/projects/my-project/applications", &admin)
        .await;
    let api = applications["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "api")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        delete(app, &format!("/api/v1/applications/{api}"), &admin)
            .await
            .0,
        204
    );
    assert!(app.deployments().await.is_empty());
    // A project.
    assert_eq!(
        delete(app, "/api/v1/projects/my-project", &admin).await.0,
        204
    );
    assert_eq!(
        app.get("/api/v1/projects/my-project/environments", &admin)
            .await
            .0,
        404
    );
    // The other workspace's project of the same slug is untouched.
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{theirs}"), &other)
            .await
            .0,
        200
    );

    // The audit log: newest first, with who, what and from where.
    let (status, log) = app.get("/api/v1/audit", &admin).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "project.deleted",
            "application.deleted",
            "environment.deleted",
            "deployment.deleted",
            "api_key.created",
            "api_key.created",
            "api_key.created",
            "workspace.created",
        ],
        "{log}"
    );
    let deleted = &items[3];
    assert_eq!(deleted["target"]["kind"], "deployment");
    assert_eq!(deleted["target"]["id"], first.as_str());
    assert_eq!(deleted["actor"]["kind"], "api_key");
    assert_eq!(deleted["actor"]["name"], "admin");
    assert_eq!(deleted["address"], "127.0.0.1");
    assert_eq!(deleted["workspace"], "acme");
    assert!(deleted["at"].as_str().unwrap().ends_with('Z'));
    // The workspace's first key was created by the master key.
    assert_eq!(items[6]["actor"]["kind"], "master");
    // Pages: two at a time, following `next` and the Link header.
    let (status, headers, page) = app
        .send(
            "GET",
            "/api/v1/audit?limit=2",
            &[("Authorization", &format!("Bearer {admin}"))],
            "",
        )
        .await;
    assert_eq!(status, 200);
    let next = page["next"].as_str().unwrap();
    let link = headers.get("link").unwrap().to_str().unwrap();
    assert!(link.contains(&format!("before={next}")), "{link}");
    let (_, second_page) = app
        .get(&format!("/api/v1/audit?limit=2&before={next}"), &admin)
        .await;
    assert_eq!(second_page["items"][0]["action"], "environment.deleted");
    let (status, body) = app.get("/api/v1/audit?limit=0", &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    // Not for a read key; the key limited to the deleted project went with it.
    assert_eq!(app.get("/api/v1/audit", &reader).await.0, 403);
    assert_eq!(app.get("/api/v1/audit", &limited).await.0, 401);
    // Another workspace's admin sees only its own.
    let (_, theirs_log) = app.get("/api/v1/audit", &other).await;
    assert!(
        theirs_log["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["workspace"] == "other")
    );

    // The master key deletes a workspace; its keys stop working, its entries stay.
    assert_eq!(delete(app, "/api/v1/workspaces/other", &admin).await.0, 401);
    assert_eq!(
        delete(app, "/api/v1/workspaces/other", MASTER_KEY).await.0,
        204
    );
    assert_eq!(app.get("/api/v1/deployments", &other).await.0, 401);
    assert_eq!(
        delete(app, "/api/v1/workspaces/other", MASTER_KEY).await.0,
        404
    );
    let (_, all) = app.get("/api/v1/audit", MASTER_KEY).await;
    assert_eq!(all["items"][0]["action"], "workspace.deleted");
    assert_eq!(all["items"][0]["workspace"], "other");
    assert_eq!(all["items"][0]["actor"]["kind"], "master");
    let (status, _) = app.get("/api/v1/audit?workspace=acme", MASTER_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.get("/api/v1/audit?workspace=nope", MASTER_KEY).await.0,
        404
    );
}

async fn key_hook_and_integration_changes_are_audited(app: &TestApp) {
    let admin = app.admin_key.clone();
    let (status, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &admin,
            json!({"name": "status", "target_url": "https://example.com/hook",
                   "trigger_when": {"events": ["deployment.succeeded"]}}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post(&format!("/api/v1/hooks/{hook}/disable"), &admin, json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        app.post(&format!("/api/v1/hooks/{hook}/enable"), &admin, json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        delete(app, &format!("/api/v1/hooks/{hook}"), &admin)
            .await
            .0,
        204
    );
    let (integration, _) = app
        .integration(json!({"provider": "github", "name": "repos"}))
        .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/integrations/{integration}/rotate-secret"),
            &admin,
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        delete(app, &format!("/api/v1/integrations/{integration}"), &admin)
            .await
            .0,
        204
    );
    let (status, key) = app
        .post(
            "/api/v1/workspaces/acme/signing-keys",
            &admin,
            json!({"name": "pipelines"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(
            app,
            &format!("/api/v1/workspaces/acme/signing-keys/{id}"),
            &admin
        )
        .await
        .0,
        204
    );

    let (_, log) = app.get("/api/v1/audit", &admin).await;
    let entries: Vec<(String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("signing_key.revoked", ""),
        ("signing_key.created", "pipelines (ingest)"),
        ("integration.deleted", "repos"),
        ("integration.secret_rotated", "repos"),
        ("integration.created", "repos"),
        ("hook.deleted", "status"),
        ("hook.enabled", "status"),
        ("hook.disabled", "status"),
        ("hook.created", "status"),
        ("api_key.created", "admin (admin)"),
        ("workspace.created", "acme"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, n)| ((*a).to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(entries, expected, "{log}");
    // No secret in any entry.
    assert!(!log.to_string().contains("whsec_"), "{log}");
}

on_both_backends!(
    admins_delete_what_they_may_and_the_audit_log_says_so,
    key_hook_and_integration_changes_are_audited,
);
