//! The native API: health, administration, roles and scopes, deployment paging and filters.

use serde_json::json;
use shiplog_blackbox::{MASTER_KEY, TestApp, on_both_backends};

async fn deploy(app: &TestApp, key: &str, project: &str, run: u32) -> String {
    let (status, body) = app
        .post(
            "/api/webhooks/ci",
            key,
            json!({"event": "deploy.completed", "project_slug": project, "status": "success",
                   "environment": "production", "url": format!("https://ci.example/runs/{run}")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["deployment_id"].as_str().unwrap().to_owned()
}

async fn health_and_readiness(app: &TestApp) {
    assert_eq!(
        app.get("/healthz", "").await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        app.get("/readyz", "").await,
        (200, json!({"status": "ready"}))
    );
    let (status, doc) = app.get("/api/v1/openapi.json", "").await;
    assert_eq!(status, 200, "the OpenAPI document needs no key");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert!(doc["paths"]["/api/webhooks/ci"]["post"].is_object());
    let (_, first) = app.get_headers("/healthz").await;
    let (status, second) = app.get_headers("/api/v1/deployments").await;
    assert_eq!(status, 401);
    let id = |headers: &awc::http::header::HeaderMap| {
        headers
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        id(&first),
        id(&second),
        "every response, refusals too, carries its own request id"
    );
}

async fn only_the_master_key_creates_workspaces(app: &TestApp) {
    let (status, _) = app
        .post(
            "/api/v1/workspaces",
            &app.admin_key,
            json!({"code": "globex"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .post(
            "/api/v1/workspaces",
            MASTER_KEY,
            json!({"code": "Bad Code!"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("code: invalid workspace code"),
        "{body}"
    );
    let (status, body) = app
        .post("/api/v1/workspaces", MASTER_KEY, json!({"code": "acme"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_exists");
}

async fn roles_and_project_scopes_are_enforced(app: &TestApp) {
    let (status, _) = app
        .post("/api/v1/projects", &app.admin_key, json!({"slug": "other"}))
        .await;
    assert_eq!(status, 201);
    let ingest = app.key("ingest", None).await;
    let mine = deploy(app, &ingest, "my-project", 1).await;
    let theirs = deploy(app, &ingest, "other", 2).await;
    let (status, body) = app.get("/api/v1/deployments", &ingest).await;
    assert_eq!(status, 403, "ingest keys cannot read: {body}");
    assert_eq!(body["error"]["code"], "role_forbidden");
    let scoped = app.key("read", Some("my-project")).await;
    let (_, page) = app.get("/api/v1/deployments", &scoped).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let (status, _) = app
        .get(&format!("/api/v1/deployments/{theirs}"), &scoped)
        .await;
    assert_eq!(
        status, 404,
        "another project's deployment does not exist for this key"
    );
    let (status, _) = app
        .post("/api/v1/projects", &scoped, json!({"slug": "third"}))
        .await;
    assert_eq!(status, 403, "read keys cannot administer");
}

async fn deployments_page_with_cursors_and_filters(app: &TestApp) {
    let mut created = Vec::new();
    for run in 0..5 {
        created.push(deploy(app, &app.admin_key, "my-project", run).await);
    }
    created.reverse();
    let seen = app.listed_ids("", 2).await;
    assert_eq!(seen, created, "newest first, each once");

    // A cursor is the page's last deployment's time and id, and counts nothing.
    let (_, first) = app.get("/api/v1/deployments?limit=1", &app.admin_key).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let last = &first["items"][0];
    let at = time::OffsetDateTime::parse(
        last["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        cursor,
        format!(
            "t{}d{}",
            at.unix_timestamp_nanos() / 1000,
            last["id"].as_str().unwrap().replace('-', "")
        ),
        "a deployment without start or finish is listed at its arrival: {last}"
    );
    // In another workspace it means only a time: that workspace's own older deployments (here
    // none), never this one's.
    let other = &app.other_workspace("globex").await;
    let (status, body) = app
        .get(&format!("/api/v1/deployments?cursor={cursor}"), other)
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"items": [], "next_cursor": null}))
    );

    let (_, failed) = app
        .get("/api/v1/deployments?status=failed", &app.admin_key)
        .await;
    assert_eq!(failed["items"], json!([]));
    for (query, field) in [
        ("limit=0", "limit"),
        ("status=bogus", "status"),
        ("since=yesterday", "since"),
        ("cursor=x", "cursor"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/deployments?{query}"), &app.admin_key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{query}: {body}"
        );
    }
}

async fn references_become_deployed_when_a_closing_deployment_succeeds(app: &TestApp) {
    let started = json!({"event": "deploy.started", "project_slug": "my-project", "environment": "production",
                         "url": "https://ci.example/runs/9", "commit_message": "fix: login, fixes #PR-1; see #42"});
    assert_eq!(
        app.post("/api/webhooks/ci", &app.admin_key, started.clone())
            .await
            .0,
        200
    );
    let (status, open) = app
        .get(
            "/api/v1/projects/my-project/references/PR-1",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(open["status"], "open");
    let mut completed = started;
    completed["event"] = json!("deploy.completed");
    completed["status"] = json!("success");
    assert_eq!(
        app.post("/api/webhooks/ci", &app.admin_key, completed)
            .await
            .0,
        200
    );
    let (_, deployed) = app
        .get(
            "/api/v1/projects/my-project/references/%23PR-1",
            &app.admin_key,
        )
        .await;
    assert_eq!(deployed["status"], "deployed", "{deployed}");
    assert_eq!(deployed["deployed_to"], "production");
    assert_eq!(deployed["deployments"].as_array().unwrap().len(), 1);
    let (_, mentioned) = app
        .get(
            "/api/v1/projects/my-project/references/%2342",
            &app.admin_key,
        )
        .await;
    assert_eq!(mentioned["key"], "#42");
    assert_eq!(
        mentioned["status"], "open",
        "only the reference after the keyword closes"
    );
    let (status, body) = app
        .get(
            "/api/v1/projects/my-project/references/PR-404",
            &app.admin_key,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("reference_not_found"))
    );
}

async fn metrics_count_requests_by_route_pattern_and_events_by_status(app: &TestApp) {
    let id = deploy(app, &app.admin_key, "my-project", 1).await;
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
            .await
            .0,
        200
    );
    let mut response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(
        text.contains(r#"shiplog_events_ingested_total{api="clienwork",event="deploy.completed",status="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"shiplog_http_requests_total{method="GET",route="/api/v1/deployments/{id}",status="200"} 1"#),
        "ids are not labels: {text}"
    );
    assert!(!text.contains(&id), "no concrete id in any label");
}

async fn the_environments_board_shows_each_applications_current_version(app: &TestApp) {
    let send = |body: serde_json::Value| async move {
        let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
        assert_eq!(status, 200, "{answer}");
    };
    send(
        json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
                "environment": "staging", "commit_sha": "aaa111", "ref": "v1.0",
                "url": "https://ci.example/runs/1"}),
    )
    .await;
    send(
        json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
                "environment": "production", "commit_sha": "aaa111", "ref": "v1.0",
                "url": "https://ci.example/runs/2"}),
    )
    .await;
    send(json!({"event": "deploy.completed", "project_slug": "my-project", "status": "failed",
                "environment": "production", "commit_sha": "bbb222", "url": "https://ci.example/runs/3"}))
    .await;
    send(json!({"event": "deploy.started", "project_slug": "my-project",
                "environment": "staging", "commit_sha": "ccc333", "url": "https://ci.example/runs/4"}))
    .await;

    let (status, board) = app
        .get("/api/v1/projects/my-project/environments", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["project"], "my-project");
    let environments = board["environments"].as_array().unwrap();
    let codes: Vec<&str> = environments
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["staging", "production"],
        "in position (creation) order"
    );
    let staging = &environments[0]["applications"][0];
    assert_eq!(staging["application"], "my-project");
    assert_eq!(
        staging["in_progress"], true,
        "run 4 is newer than the current version"
    );
    assert_eq!(staging["current"]["commit_sha"], "aaa111");
    let production = &environments[1]["applications"][0];
    assert_eq!(production["in_progress"], false);
    assert_eq!(
        production["current"]["commit_sha"], "aaa111",
        "the failed run 3 is not the current version"
    );
    assert_eq!(production["current"]["ref"], "v1.0");

    let ingest = app.key("ingest", None).await;
    let (status, body) = app
        .get("/api/v1/projects/my-project/environments", &ingest)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .get("/api/v1/projects/nowhere/environments", &app.admin_key)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "project_not_found");
}

on_both_backends!(
    metrics_count_requests_by_route_pattern_and_events_by_status,
    references_become_deployed_when_a_closing_deployment_succeeds,
    health_and_readiness,
    only_the_master_key_creates_workspaces,
    roles_and_project_scopes_are_enforced,
    deployments_page_with_cursors_and_filters,
    the_environments_board_shows_each_applications_current_version,
);
