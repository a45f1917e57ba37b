//! Outgoing hooks end to end: deployments sent through the compatible APIs reach a real HTTP
//! receiver on 127.0.0.1 as signed commit-status requests, in order; failures are retried and
//! visible in the deliveries API. On SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends, receiver, receiver_answering_first};
use shiplog_domain::timestamp::Timestamp;
use shiplog_signature::standard_webhooks::{self, Secret};
use wiremock::{MockServer, Request, ResponseTemplate};

const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

async fn clienwork(app: &TestApp, event: &str, status: &str) {
    let bearer = format!("Bearer {}", app.admin_key);
    let body = json!({
        "event": event, "project_slug": "my-project", "status": status,
        "commit_sha": SHA, "commit_message": "feat: checkout #PR-7",
        "environment": "production", "url": "https://ci.example.com/runs/42",
    });
    let (code, answer) = app
        .post_raw(
            "/api/webhooks/ci",
            &[
                ("Authorization", &bearer),
                ("X-CI-Provider", "github-actions"),
            ],
            body.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
}

/// Waits (at most 20 s) until the receiver has `n` requests.
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    let started = Instant::now();
    loop {
        let requests = server.received_requests().await.unwrap();
        if requests.len() >= n || started.elapsed() > Duration::from_secs(20) {
            assert_eq!(requests.len(), n, "requests at the receiver");
            return requests;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} is sent"))
        .to_str()
        .unwrap()
}

/// Checks the Standard Webhooks signature as a receiver would.
fn assert_signed(request: &Request, secret: &str) {
    let secret = Secret::parse(secret).unwrap();
    standard_webhooks::verify(
        &secret,
        header(request, "webhook-id"),
        header(request, "webhook-timestamp"),
        &request.body,
        header(request, "webhook-signature"),
        now(),
        300,
    )
    .expect("the signature verifies");
}

fn now() -> Timestamp {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_unix_seconds(i64::try_from(seconds).unwrap()).unwrap()
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

async fn deliveries(app: &TestApp, hook: &str) -> Vec<Value> {
    let (code, list) = app
        .get(&format!("/api/v1/hooks/{hook}/deliveries"), &app.admin_key)
        .await;
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

async fn the_github_preset_reports_pending_then_success(app: &TestApp) {
    let receiver = receiver(ResponseTemplate::new(201).set_body_string("{}")).await;
    let (code, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({
                "name": "GitHub status",
                "preset": {"kind": "github", "repository": "acme/shop",
                           "access_token": "ghp_secret_token", "api_url": receiver.uri()},
            }),
        )
        .await;
    assert_eq!(code, 201, "{hook}");
    let secret = hook["signing_secret"].as_str().unwrap().to_owned();
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(hook["secrets"], json!(["access_token"]));
    assert!(!hook.to_string().contains("ghp_secret_token"), "{hook}");

    clienwork(app, "deploy.started", "in_progress").await;
    clienwork(app, "deploy.completed", "success").await;
    let requests = received(&receiver, 2).await;

    let states: Vec<Value> = requests.iter().map(|r| body(r)["state"].clone()).collect();
    assert_eq!(states, [json!("pending"), json!("success")]);
    for request in &requests {
        assert_eq!(
            request.url.path(),
            format!("/repos/acme/shop/statuses/{SHA}")
        );
        assert_eq!(header(request, "authorization"), "Bearer ghp_secret_token");
        assert_eq!(header(request, "accept"), "application/vnd.github+json");
        assert_eq!(header(request, "x-github-api-version"), "2022-11-28");
        assert_eq!(header(request, "content-type"), "application/json");
        assert_signed(request, &secret);
        let sent = body(request);
        assert_eq!(
            sent["context"], "shiplog/production",
            "one context for every state"
        );
        // The commit status links to the deployment's page on the dashboard.
        let link = sent["target_url"].as_str().unwrap();
        let page = link.split_once("/deployments/").unwrap().1;
        assert!(!link.contains("/api/"), "{sent}");
        let (status, _, _) = app.page(&format!("/deployments/{page}"), None).await;
        assert_eq!(status, 303, "the page asks to sign in first: {sent}");
        assert_eq!(
            sent.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["context", "description", "state", "target_url"]
        );
    }
    let listed = deliveries(app, &id).await;
    assert_eq!(listed.len(), 2);
    // Newest first; webhook-id is the delivery id.
    assert_eq!(listed[0]["event"], "deployment.succeeded");
    assert_eq!(listed[1]["event"], "deployment.started");
    assert_eq!(listed[1]["id"], header(&requests[0], "webhook-id"));
    for delivery in &listed {
        assert_eq!(delivery["status"], "delivered");
        assert_eq!(delivery["attempts"][0]["status_code"], 201);
    }
}

/// The seed's Devopness request bodies, with the placeholders filled the way its guide says,
/// and nothing of shiplog's own: the token comes from the application's stored credential.
fn devopness_hook(receiver: &str, event: &str, description: &str) -> Value {
    json!({
        "name": "CI(build)",
        "action_type": "deploy",
        "target_url": format!("{receiver}/statuses/{{{{ action.triggered_from.hook_parsed_variables.commit_hash }}}}"),
        "settings": {
            "request_headers": [
                {"name": "Authorization", "value": "Bearer {{ application.source_provider.access_token }}"}
            ],
            "request_body": {
                "state": "{{ status.github }}",
                "target_url": "{{ action.url }}",
                "url": "{{ action.url }}",
                "description": description,
                "context": "ci/devopness(build)",
                "key": "ci/devopness(build)"
            }
        },
        "trigger_when": {"events": [event]}
    })
}

async fn devopness_hooks_render_the_seed_bodies(app: &TestApp) {
    let receiver = receiver(ResponseTemplate::new(200)).await;
    // The deploy creates the project's default application; its id is the pipeline id.
    clienwork(app, "build.started", "running").await;
    let (code, applications) = app
        .get("/api/v1/projects/my-project/applications", &app.admin_key)
        .await;
    assert_eq!(code, 200, "{applications}");
    let pipeline = applications["items"][0]["id"].as_str().unwrap().to_owned();

    // Without a token anywhere the hook cannot render: the 400 names both ways to fix it.
    let (code, refused) = app
        .post(
            &format!("/pipelines/{pipeline}/hooks/outgoing"),
            &app.admin_key,
            devopness_hook(&receiver.uri(), "action.started", "x"),
        )
        .await;
    assert_eq!(code, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/source-provider") && message.contains("secret named access_token"),
        "{message}"
    );
    // The application's credential: admin only, write-only.
    let credential = json!({"provider": "github", "access_token": "source-provider-token"});
    let path = format!("/api/v1/applications/{pipeline}/source-provider");
    let reader = app.key("read", None).await;
    let bearer = format!("Bearer {reader}");
    let (code, _, _) = app
        .send(
            "PUT",
            &path,
            &[("Authorization", &bearer)],
            &credential.to_string(),
        )
        .await;
    assert_eq!(code, 403);
    let bearer = format!("Bearer {}", app.admin_key);
    let (code, _, answer) = app
        .send(
            "PUT",
            &path,
            &[("Authorization", &bearer)],
            &credential.to_string(),
        )
        .await;
    assert_eq!(code, 204, "{answer}");
    let (_, applications) = app
        .get("/api/v1/projects/my-project/applications", &app.admin_key)
        .await;
    assert_eq!(applications["items"][0]["source_provider"], "github");
    assert!(!applications.to_string().contains("source-provider-token"));

    for (event, description) in [
        ("action.started", "Application building started"),
        ("action.failed", "Application building failed"),
        ("action.completed", "Application building success"),
    ] {
        let (code, created) = app
            .post(
                &format!("/pipelines/{pipeline}/hooks/outgoing"),
                &app.admin_key,
                devopness_hook(&receiver.uri(), event, description),
            )
            .await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["pipeline_id"], pipeline.as_str());
    }
    let (code, hooks) = app
        .get(&format!("/pipelines/{pipeline}/hooks"), &app.admin_key)
        .await;
    assert_eq!(code, 200);
    assert_eq!(hooks.as_array().unwrap().len(), 3);
    assert_eq!(
        hooks[0]["settings"]["request_headers"][0],
        json!({"name": "Authorization", "value": "[redacted]"})
    );
    assert!(!hooks.to_string().contains("source-provider-token"));

    clienwork(app, "deploy.started", "in_progress").await;
    clienwork(app, "deploy.completed", "failure").await;
    // Every deployment record names its pipeline id.
    let (_, deployments) = app
        .get("/api/v1/deployments?project=my-project", &app.admin_key)
        .await;
    assert_eq!(
        deployments["items"][0]["application_id"],
        pipeline.as_str(),
        "{deployments}"
    );
    let requests = received(&receiver, 2).await;
    let first = body(&requests[0]);
    let second = body(&requests[1]);
    assert_eq!(first["state"], "pending");
    assert_eq!(first["description"], "Application building started");
    assert_eq!(second["state"], "failure");
    assert_eq!(second["description"], "Application building failed");
    for request in &requests {
        assert_eq!(request.url.path(), format!("/statuses/{SHA}"));
        assert_eq!(
            header(request, "authorization"),
            "Bearer source-provider-token"
        );
    }
    assert_eq!(first["url"], first["target_url"]);
    assert_eq!(first["context"], "ci/devopness(build)");
}

async fn templates_are_checked_when_saved(app: &TestApp) {
    let hook = |target: &str| json!({"name": "x", "target_url": target, "trigger_when": {"events": ["deployment.succeeded"]}});
    let path = "/api/v1/projects/my-project/hooks";
    // One tenant's template cannot stall the server: the probe's loops hit the budget.
    let thousand = "x".repeat(1000);
    for (template, limit) in [
        (
            format!(
                r#"{{% for a in "{thousand}" %}}{{% for b in "{thousand}" %}}{{% endfor %}}{{% endfor %}}"#
            ),
            "50000 instructions",
        ),
        (
            r#"{% for a in "x"*20 %}{{ "x"*100000000 }}{% endfor %}"#.to_owned(),
            "65536 bytes",
        ),
    ] {
        let mut body = hook("https://example.com/");
        body["settings"] = json!({"request_body": {"text": template}});
        let (code, answer) = app.post(path, &app.admin_key, body).await;
        assert_eq!(code, 400, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("settings.request_body.text") && message.contains(limit),
            "{message}"
        );
    }
    let (code, answer) = app
        .post(
            path,
            &app.admin_key,
            hook("https://example.com/{{ deployment.commit }}"),
        )
        .await;
    assert_eq!(code, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_field");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("deployment.commit"), "{message}");
    assert!(message.starts_with("target_url"), "{message}");

    let (code, answer) = app
        .post(
            path,
            &app.admin_key,
            hook("https://example.com/{{ unclosed"),
        )
        .await;
    assert_eq!(code, 400, "{answer}");

    let mut token = hook("https://example.com/");
    token["settings"] = json!({"request_headers": [{"name": "Authorization", "value": "Bearer {{ application.source_provider.access_token }}"}]});
    let (code, answer) = app.post(path, &app.admin_key, token).await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access_token")
    );

    // Hop-by-hop headers and NUL in a value are refused when saved.
    for (name, value) in [
        ("Connection", "close"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "Basic x"),
        ("Expect", "100-continue"),
        ("X-Ok", "a\u{0}b"),
    ] {
        let mut header = hook("https://example.com/");
        header["settings"] = json!({"request_headers": [{"name": name, "value": value}]});
        let (code, answer) = app.post(path, &app.admin_key, header).await;
        assert_eq!(code, 400, "{name}: {answer}");
    }
    // A target without a host is refused, not looked up as the name `x` (the sender applies
    // the same check to every rendered URL before it connects).
    let (code, answer) = app.post(path, &app.admin_key, hook("http:///x")).await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no host"),
        "{answer}"
    );

    let mut events = hook("https://example.com/");
    events["trigger_when"]["events"] = json!(["action.finished"]);
    let (code, answer) = app.post(path, &app.admin_key, events).await;
    assert_eq!(code, 400, "{answer}");
    assert_eq!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("trigger_when.events")
    );

    // This server allows private targets (its receivers are local); the scheme is still checked.
    let (code, _) = app
        .post(path, &app.admin_key, hook("file:///etc/passwd"))
        .await;
    assert_eq!(code, 400);

    let read = app.key("read", None).await;
    let (code, _) = app.post(path, &read, hook("https://example.com/")).await;
    assert_eq!(code, 403);
    let (code, _) = app
        .get(
            "/api/v1/hooks/00000000-0000-0000-0000-000000000000",
            &app.admin_key,
        )
        .await;
    assert_eq!(code, 404);
}

async fn a_failed_attempt_is_retried_and_visible(app: &TestApp) {
    let receiver = receiver_answering_first(
        1,
        ResponseTemplate::new(503).set_body_string("maintenance"),
        ResponseTemplate::new(200),
    )
    .await;
    let (code, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "envelope", "target_url": format!("{}/in", receiver.uri()),
                   "trigger_when": {"events": ["deployment.succeeded"]}}),
        )
        .await;
    assert_eq!(code, 201, "{hook}");
    let id = hook["id"].as_str().unwrap();
    clienwork(app, "deploy.completed", "success").await;
    // The first attempt fails at once; the schedule's second attempt comes 5 s later.
    let first = received(&receiver, 1).await;
    // The receiver has answered; the worker records the attempt right after (its own write).
    let recorded = Instant::now();
    let listed = loop {
        let listed = deliveries(app, id).await;
        if listed[0]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break listed;
        }
        assert!(recorded.elapsed() < Duration::from_secs(10), "{listed:?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["attempts"][0]["status_code"], 503);
    assert_eq!(listed[0]["attempts"][0]["response_body"], "maintenance");
    assert!(listed[0]["next_attempt_at"].is_string());
    let both = received(&receiver, 2).await;
    assert_eq!(
        header(&both[1], "webhook-id"),
        header(&first[0], "webhook-id"),
        "the same webhook-id on every attempt"
    );
    // The standard envelope, as no body template was given.
    let sent = body(&both[1]);
    assert_eq!(sent["type"], "deployment.succeeded");
    assert_eq!(sent["data"]["deployment"]["commit_sha"], SHA);
    assert_eq!(sent["data"]["environment"]["code"], "production");
    let started = Instant::now();
    loop {
        let listed = deliveries(app, id).await;
        if listed[0]["status"] == "delivered" {
            assert_eq!(listed[0]["attempts"].as_array().unwrap().len(), 2);
            assert_eq!(listed[0]["attempts"][1]["status_code"], 200);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{listed:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Redelivery sends it once more, with the same id.
    let delivery = listed_id(app, id).await;
    let (code, again) = app
        .post(
            &format!("/api/v1/deliveries/{delivery}/redeliver"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(code, 202, "{again}");
    assert_eq!(again["status"], "pending");
    let three = received(&receiver, 3).await;
    assert_eq!(header(&three[2], "webhook-id"), delivery);
}

async fn listed_id(app: &TestApp, hook: &str) -> String {
    deliveries(app, hook).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn test_sends_disable_and_delete(app: &TestApp) {
    let receiver = receiver(ResponseTemplate::new(204)).await;
    let (_, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "t", "target_url": format!("{}/t", receiver.uri()),
                   "trigger_when": {"events": ["deployment.succeeded"]}}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let (code, sent) = app
        .post(
            &format!("/api/v1/hooks/{id}/test"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{sent}");
    assert_eq!(sent["event"], "hook.test");
    assert_eq!(sent["status"], "delivered");
    assert_eq!(sent["attempts"][0]["status_code"], 204);
    let requests = received(&receiver, 1).await;
    assert_signed(&requests[0], hook["signing_secret"].as_str().unwrap());

    let (code, disabled) = app
        .post(
            &format!("/api/v1/hooks/{id}/disable"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(disabled["enabled"], false);
    clienwork(app, "deploy.completed", "success").await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received_requests().await.unwrap().len(),
        1,
        "a disabled hook sends nothing"
    );

    let status = app
        .client
        .delete(format!("{}/api/v1/hooks/{id}", app.base))
        .insert_header(("Authorization", format!("Bearer {}", app.admin_key)))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 204);
    let (code, _) = app
        .get(&format!("/api/v1/hooks/{id}"), &app.admin_key)
        .await;
    assert_eq!(code, 404);
}

async fn a_hivel_deploy_reports_to_the_applications_own_repository(app: &TestApp) {
    let receiver = receiver(ResponseTemplate::new(201)).await;
    // No repository in the preset: the deployed application's own is used.
    let (code, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "status", "preset": {"kind": "github", "access_token": "t",
                   "api_url": receiver.uri(), "context": "deploy/{{ environment.code }}"}}),
        )
        .await;
    assert_eq!(code, 201, "{hook}");
    let token = app.key("ingest", Some("my-project")).await;
    let event = json!({
        "deployment_id": "deploy-1", "event_type": "completed", "status": "failure",
        "repo_url": "https://github.com/hivelai/webhook-logger",
        "commit_hash": "abc123def456789012345678901234567890abcd",
        "environment": "staging", "start_time": "2025-09-22T12:00:00Z",
        "end_time": "2025-09-22T12:15:30Z", "branch": "main",
    });
    let (code, answer) = app
        .post_raw(
            "/api/hooks/v2/deployment",
            &[("X-API-Token", &token)],
            event.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let requests = received(&receiver, 1).await;
    assert_eq!(
        requests[0].url.path(),
        "/repos/hivelai/webhook-logger/statuses/abc123def456789012345678901234567890abcd"
    );
    let sent = body(&requests[0]);
    assert_eq!(sent["state"], "failure");
    assert_eq!(sent["context"], "deploy/staging");
    assert_signed(&requests[0], hook["signing_secret"].as_str().unwrap());
}

/// One workspace whose 48 hooks all point at a target that answers after 20 s cannot delay
/// another workspace's delivery: it arrives while none of the slow ones has even finished an
/// attempt, and the slow workspace never has more than its share in flight.
async fn one_workspaces_slow_targets_do_not_delay_anothers(app: &TestApp) {
    use shiplog_app::hooks::MAX_IN_FLIGHT_PER_WORKSPACE;
    let slow = receiver(ResponseTemplate::new(200).set_delay(Duration::from_secs(20))).await;
    let mut slow_hooks = Vec::new();
    for n in 0..48 {
        let (code, created) = app
            .post(
                "/api/v1/projects/my-project/hooks",
                &app.admin_key,
                json!({"name": format!("slow {n}"), "target_url": slow.uri(),
                       "trigger_when": {"events": ["deployment.succeeded"]}}),
            )
            .await;
        assert_eq!(code, 201, "{created}");
        slow_hooks.push(created["id"].as_str().unwrap().to_owned());
    }
    let other = app.other_workspace("globex").await;
    app.project(&other, "shop").await;
    let fast = receiver(ResponseTemplate::new(200)).await;
    let (code, created) = app
        .post(
            "/api/v1/projects/shop/hooks",
            &other,
            json!({"name": "fast", "target_url": fast.uri(),
                   "trigger_when": {"events": ["deployment.succeeded"]}}),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let deploy = |project: &str| {
        json!({"event": "deploy.completed", "project_slug": project, "status": "success",
               "environment": "production", "url": "https://ci.example/runs/1"})
    };
    app.clienwork(&app.admin_key, deploy("my-project")).await;
    // Let the slow workspace's deliveries be claimed first.
    let started = Instant::now();
    while slow.received_requests().await.unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "nothing sent");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    app.clienwork(&other, deploy("shop")).await;
    let started = Instant::now();
    while fast.received_requests().await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(14),
            "the other workspace's delivery waited behind the slow ones"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = slow.received_requests().await.unwrap().len();
    assert!(
        (1..=MAX_IN_FLIGHT_PER_WORKSPACE as usize).contains(&in_flight),
        "{in_flight} of the slow workspace's deliveries in flight"
    );
    for hook in &slow_hooks {
        let (code, deliveries) = app
            .get(&format!("/api/v1/hooks/{hook}/deliveries"), &app.admin_key)
            .await;
        assert_eq!(code, 200);
        for delivery in deliveries["items"].as_array().unwrap() {
            assert_eq!(delivery["attempts"], json!([]), "{delivery}");
        }
    }
}

/// A project holds at most 100 hooks (one more is refused, naming the limit), and the listing
/// pages through them with `limit` and the `Link` header's next page.
async fn hooks_per_project_are_capped_and_listed_in_pages(app: &TestApp) {
    let path = "/api/v1/projects/my-project/hooks";
    let hook = |n: usize| {
        json!({"name": format!("h{n}"), "target_url": "https://example.com/",
                                 "trigger_when": {"events": ["deployment.succeeded"]}})
    };
    let mut created = Vec::new();
    for n in 0..100 {
        let (code, answer) = app.post(path, &app.admin_key, hook(n)).await;
        assert_eq!(code, 201, "{answer}");
        created.push(answer["id"].as_str().unwrap().to_owned());
    }
    let (code, answer) = app.post(path, &app.admin_key, hook(100)).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "hook_limit_reached");
    assert!(answer.to_string().contains("100"), "{answer}");

    let (code, headers, all) = app
        .send(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {}", app.admin_key))],
            "",
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 100);
    assert!(headers.get("link").is_none(), "one page holds them all");

    let mut next = Some(format!("{path}?limit=30"));
    let mut listed = Vec::new();
    let mut pages = 0;
    while let Some(page) = next.take() {
        let (code, headers, items) = app
            .send(
                "GET",
                &page,
                &[("Authorization", &format!("Bearer {}", app.admin_key))],
                "",
            )
            .await;
        assert_eq!(code, 200, "{items}");
        pages += 1;
        for item in items["items"].as_array().unwrap() {
            listed.push(item["id"].as_str().unwrap().to_owned());
        }
        next = headers.get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
    }
    assert_eq!(pages, 4);
    assert_eq!(listed, created, "every hook once, oldest first");

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?after=00000000-0000-0000-0000-000000000000", "after"),
    ] {
        let (code, answer) = app.get(&format!("{path}{query}"), &app.admin_key).await;
        assert_eq!(code, 400, "{query}: {answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
}

on_both_backends!(
    the_github_preset_reports_pending_then_success,
    devopness_hooks_render_the_seed_bodies,
    templates_are_checked_when_saved,
    a_failed_attempt_is_retried_and_visible,
    test_sends_disable_and_delete,
    a_hivel_deploy_reports_to_the_applications_own_repository,
    one_workspaces_slow_targets_do_not_delay_anothers,
    hooks_per_project_are_capped_and_listed_in_pages,
);
