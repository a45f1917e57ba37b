//! `POST /api/v1/import` over HTTP, on both backends: records become deployments normalized
//! and linked as live events are, a bad line is refused by its number and nothing of it is
//! stored, the same file twice adds nothing, a record also sent live (a Clienwork event, a
//! GitHub deployment webhook) is that one deployment, imported history lists under what is newer,
//! counts in DORA and raises no hook.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends, receiver};
use wiremock::ResponseTemplate;

async fn import(app: &TestApp, key: &str, body: &str) -> (u16, Value) {
    app.post_raw(
        "/api/v1/import",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/x-ndjson"),
        ],
        body.to_owned(),
    )
    .await
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn past(run: u32, day: u32, status: &str) -> Value {
    json!({
        "project": "my-project", "application": "api", "environment": "production",
        "status": status, "provider": "github",
        "started_at": format!("2024-03-{day:02}T10:00:00Z"),
        "finished_at": format!("2024-03-{day:02}T10:05:00Z"),
        "commit_sha": format!("{run:0>40x}"),
        "commit_timestamp": format!("2024-03-{day:02}T08:00:00Z"),
        "ref": "refs/heads/main",
        "commit_message": format!("Release {run}, closes #PR-{run}"),
        "url": format!("https://ci.example/runs/{run}"),
        "deployed_by": "octocat", "version": format!("1.{run}.0"),
        "external_id": format!("deploy-{run}"),
    })
}

async fn records_become_deployments_and_bad_lines_are_named(app: &TestApp) {
    let mut body = ndjson(&[past(1, 1, "success"), past(2, 2, "failure")]);
    body.push_str("\n{\"application\": \"api\", \"environment\": \"production\"}\n");
    body.push_str("not json\n");
    body.push_str(&ndjson(&[
        json!({"application": "api", "environment": "production",
        "status": "success", "finished_at": "yesterday"}),
    ]));
    body.push_str(&past(3, 3, "error").to_string());
    let (status, answer) = import(app, &app.admin_key, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["duplicates"], 0);
    assert_eq!(answer["rejected_count"], 3);
    let rejected = answer["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5, 6], "{answer}");
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("status"),
        "{answer}"
    );
    assert!(
        rejected[1]["error"].as_str().unwrap().contains("JSON"),
        "{answer}"
    );
    assert!(
        rejected[2]["error"]
            .as_str()
            .unwrap()
            .contains("finished_at"),
        "{answer}"
    );

    let listed = app.deployments().await;
    assert_eq!(listed.len(), 3, "only the good lines are stored");
    // Newest first by their own time; statuses normalized from GitHub's words.
    let statuses: Vec<&str> = listed
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "success"]);
    let first = &listed[2];
    assert_eq!(first["external_id"], "deploy-1");
    assert_eq!(first["provider_status"], "success");
    assert_eq!(first["build_number"], "1.1.0");
    assert_eq!(
        first["references"],
        json!([{"key": "PR-1", "closing": true}])
    );
    let (status, reference) = app
        .get(
            "/api/v1/projects/my-project/references/PR-1",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{reference}");
    assert_eq!(reference["status"], "deployed", "{reference}");

    // The same file again: every record a duplicate, nothing new.
    let (status, again) = import(app, &app.admin_key, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(app.deployments().await.len(), 3);
}

async fn a_record_also_sent_live_is_one_deployment(app: &TestApp) {
    // Live first (a Clienwork event of run 7), then its record without an external id.
    let live = app
        .clienwork(
            &app.admin_key,
            json!({"event": "deploy.started", "project_slug": "my-project", "status": "running",
                   "application": "api", "environment": "production",
                   "started_at": "2024-03-07T10:00:00Z",
                   "url": "https://ci.example/runs/7"}),
        )
        .await;
    let mut record = past(7, 7, "success");
    record.as_object_mut().unwrap().remove("external_id");
    let (status, answer) = import(app, &app.admin_key, &ndjson(&[record])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["accepted"], 1,
        "news of the live deployment: {answer}"
    );
    let listed = app.deployments().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], live.as_str());
    assert_eq!(listed[0]["status"], "success", "the record finished it");

    // A GitHub deployment reported by GitHub's webhook, then imported with its source.
    let (integration, secret) = crate::github::integration(app).await;
    let (status, delivered) = crate::github::deliver(
        app,
        &integration,
        "deployment_status",
        "d-1",
        crate::github::DEPLOYMENT_STATUS,
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "{delivered}");
    let record = json!({
        "project": "my-project", "application": "Hello-World", "environment": "production",
        "status": "success", "provider": "github", "finished_at": "2019-05-15T15:20:55Z",
        "commit_sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        "source": "github-deployment", "repository": "Codertocat/Hello-World",
        "external_id": "145988746",
    });
    let (status, answer) =
        import(app, &app.admin_key, &ndjson(std::slice::from_ref(&record))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rejected_count"], 0, "{answer}");
    assert_eq!(
        app.deployments().await.len(),
        2,
        "the webhook's deployment, not a new one"
    );
    let (_, again) = import(app, &app.admin_key, &ndjson(&[record])).await;
    assert_eq!(again["duplicates"], 1, "{again}");

    // A source without its repository is named.
    let (_, answer) = import(
        app,
        &app.admin_key,
        &ndjson(&[json!({"application": "api", "environment": "production",
            "status": "success", "source": "github-run", "external_id": "1"})]),
    )
    .await;
    let error = answer["rejected"][0]["error"].as_str().unwrap();
    assert!(error.contains("repository"), "{answer}");
}

async fn history_lists_under_newer_deployments_counts_in_dora_and_raises_no_hook(app: &TestApp) {
    let hook_receiver = receiver(ResponseTemplate::new(200)).await;
    let (status, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "all", "target_url": format!("{}/hook", hook_receiver.uri()),
                   "trigger_when": {"events": ["deployment.succeeded", "deployment.failed"]}}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    // Today's deployment, live.
    let newest = app
        .clienwork(
            &app.admin_key,
            json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
                   "application": "api", "environment": "production",
                   "url": "https://ci.example/runs/live"}),
        )
        .await;
    let records: Vec<Value> = (1..=20).map(|day| past(day, day, "success")).collect();
    let ingest = app.key("ingest", Some("my-project")).await;
    let (status, answer) = import(app, &ingest, &ndjson(&records)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 20, "{answer}");
    let listed = app.deployments().await;
    assert_eq!(
        listed[0]["id"],
        newest.as_str(),
        "the live one stays on top"
    );
    let times: Vec<&str> = listed[1..]
        .iter()
        .map(|d| d["finished_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first by their own time");

    let (status, board) = app
        .get("/api/v1/projects/my-project/environments", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{board}");
    let production = board["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "production")
        .unwrap();
    assert_eq!(
        production["applications"][0]["current"]["id"],
        newest.as_str(),
        "older history never replaces what runs: {production}"
    );

    let (status, dora) = app
        .get(
            "/api/v1/metrics/dora?project=my-project&from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{dora}");
    assert_eq!(dora["deployment_frequency"]["samples"], 20, "{dora}");
    assert_eq!(dora["lead_time"]["samples"], 20, "{dora}");

    // The live success raised the hook once; the twenty imported ones none (deliveries are
    // written in the ingest's own transaction, so the list is complete now).
    let (status, deliveries) = app
        .get(
            &format!("/api/v1/hooks/{}/deliveries", hook["id"].as_str().unwrap()),
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{deliveries}");
    assert_eq!(
        deliveries["items"].as_array().unwrap().len(),
        1,
        "{deliveries}"
    );
}

async fn who_may_import_and_in_what_shape(app: &TestApp) {
    let read = app.key("read", None).await;
    let (status, answer) = import(app, &read, &ndjson(&[past(1, 1, "success")])).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = app
        .post(
            "/api/v1/import",
            &app.admin_key,
            json!({"application": "api"}),
        )
        .await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-ndjson")
    );
    let other = app.other_workspace("globex").await;
    let (status, answer) = import(app, &other, &ndjson(&[past(1, 1, "success")])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["rejected"][0]["code"], "project_not_found",
        "{answer}"
    );
    assert!(app.deployments().await.is_empty());
    let (status, answer) = import(app, &app.admin_key, "").await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(0)));
}

on_both_backends!(
    records_become_deployments_and_bad_lines_are_named,
    a_record_also_sent_live_is_one_deployment,
    history_lists_under_newer_deployments_counts_in_dora_and_raises_no_hook,
    who_may_import_and_in_what_shape,
);
