//! `GET /api/v1/deployments/{id}`'s card, on both backends: how long a deployment took, its lead
//! time, its commit's address, and what it changed since the previous successful deployment of
//! its application to its environment: the commits first seen in between that the
//! application's events name (another application's are not), their change requests and who
//! ran their deployments, with the forge's compare page. A first deployment, a rollback, a
//! redeploy, a failure after a rollback and a deployment without a commit each say so.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

/// `n` as a 40-character commit hash.
fn sha(n: u32) -> String {
    format!("{n:0>40x}")
}

/// 2024-03-01 at `hh:mm` UTC.
fn at(hh: u32, mm: u32) -> String {
    format!("2024-03-01T{hh:02}:{mm:02}:00Z")
}

/// Sends one Clienwork event finished at `finished` (started five minutes earlier) and returns
/// the deployment id it answered, if any.
async fn send(app: &TestApp, event: &str, finished: (u32, u32), fields: Value) -> Option<String> {
    let mut body = json!({
        "event": event, "project_slug": "my-project", "status": "success",
        // The application `api`, recorded with its repository.
        "repo_url": "https://github.com/acme/api",
        "started_at": at(finished.0 - u32::from(finished.1 < 5), (finished.1 + 55) % 60),
        "finished_at": at(finished.0, finished.1),
    });
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["deployment_id"].as_str().map(str::to_owned)
}

async fn build(app: &TestApp, finished: (u32, u32), commit: u32) {
    send(
        app,
        "build.completed",
        finished,
        json!({"commit_sha": sha(commit)}),
    )
    .await;
}

async fn deploy(app: &TestApp, finished: (u32, u32), run: u32, fields: Value) -> String {
    let mut fields = fields;
    fields["environment"] = fields
        .get("environment")
        .cloned()
        .unwrap_or(json!("production"));
    fields["url"] = json!(format!("https://ci.example/runs/{run}"));
    send(app, "deploy.completed", finished, fields)
        .await
        .unwrap()
}

async fn card(app: &TestApp, id: &str) -> Value {
    let (status, card) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(
        card["id"], id,
        "the deployment's own fields stay at the top level"
    );
    card
}

fn commits(card: &Value) -> Vec<String> {
    card["changes"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_deployment_says_what_it_changed(app: &TestApp) {
    build(app, (10, 0), 1).await;
    let first = deploy(app, (10, 10), 1, json!({"commit_sha": sha(1)})).await;
    build(app, (11, 0), 2).await;
    build(app, (11, 10), 3).await;
    deploy(
        app,
        (11, 15),
        2,
        json!({"environment": "staging", "commit_sha": sha(3), "deployed_by": "bo",
               "commit_message": "feat: cart #PR-9"}),
    )
    .await;
    // Another application's commit, first seen in the same span, is not this one's change.
    send(
        app,
        "build.completed",
        (11, 20),
        json!({"application": "worker", "commit_sha": sha(4)}),
    )
    .await;
    build(app, (12, 0), 5).await;
    let forward = deploy(
        app,
        (12, 10),
        3,
        json!({"commit_sha": sha(5), "deployed_by": "ana", "commit_message": "fix: checkout #PR-11"}),
    )
    .await;

    let card_of_first = card(app, &first).await;
    assert_eq!(card_of_first["changes"]["kind"], "first", "{card_of_first}");
    assert_eq!(card_of_first["changes"]["since"], Value::Null);
    assert_eq!(commits(&card_of_first), [sha(1)]);
    assert_eq!(card_of_first["duration_seconds"], 300);
    // Its lead time starts at the build of its commit (no commit time was sent).
    assert_eq!(card_of_first["lead_time_seconds"], 600);

    let card = card(app, &forward).await;
    let changes = &card["changes"];
    assert_eq!(changes["kind"], "forward", "{card}");
    assert_eq!(changes["since"]["id"], first.as_str());
    assert_eq!(changes["since"]["commit_sha"], sha(1));
    assert_eq!(commits(&card), [sha(2), sha(3), sha(5)], "{card}");
    assert_eq!(changes["commits_truncated"], false);
    assert_eq!(changes["change_requests"], json!(["PR-11", "PR-9"]));
    assert_eq!(changes["triggered_by"], json!(["ana", "bo"]));
    assert_eq!(
        changes["compare_url"],
        format!(
            "https://github.com/acme/api/compare/{}...{}",
            sha(1),
            sha(5)
        )
    );
    assert_eq!(
        changes["commits"][0]["url"],
        format!("https://github.com/acme/api/commit/{}", sha(2))
    );
    assert_eq!(
        changes["commits"][0]["first_seen_at"],
        "2024-03-01T11:00:00Z"
    );
    assert_eq!(
        card["commit_url"],
        format!("https://github.com/acme/api/commit/{}", sha(5))
    );
    assert_eq!(
        card["lead_time_seconds"], 600,
        "from the build of its commit"
    );

    // Back to the second commit: the rollback takes the third and the fifth away.
    let rollback = deploy(app, (13, 0), 4, json!({"commit_sha": sha(2)})).await;
    let card_of_rollback = self::card(app, &rollback).await;
    let changes = &card_of_rollback["changes"];
    assert_eq!(changes["kind"], "rollback", "{card_of_rollback}");
    assert_eq!(changes["since"]["id"], forward.as_str());
    assert_eq!(commits(&card_of_rollback), [sha(3), sha(5)]);
    assert_eq!(
        changes["compare_url"],
        format!(
            "https://github.com/acme/api/compare/{}...{}",
            sha(2),
            sha(5)
        )
    );

    let again = deploy(app, (13, 30), 5, json!({"commit_sha": sha(2)})).await;
    let card_of_again = self::card(app, &again).await;
    assert_eq!(card_of_again["changes"]["kind"], "redeploy");
    assert_eq!(card_of_again["changes"]["since"]["id"], rollback.as_str());
    assert_eq!(commits(&card_of_again), Vec::<String>::new());
    assert_eq!(card_of_again["changes"]["compare_url"], Value::Null);

    // A failure is measured from the last success too, and brings the rolled-back commits
    // again; a failure has no lead time.
    build(app, (13, 50), 6).await;
    let failed = deploy(
        app,
        (14, 0),
        6,
        json!({"commit_sha": sha(6), "status": "failed"}),
    )
    .await;
    let card_of_failed = self::card(app, &failed).await;
    assert_eq!(card_of_failed["changes"]["kind"], "forward");
    assert_eq!(card_of_failed["changes"]["since"]["id"], again.as_str());
    assert_eq!(commits(&card_of_failed), [sha(3), sha(5), sha(6)]);
    assert_eq!(card_of_failed["lead_time_seconds"], Value::Null);
    assert_eq!(card_of_failed["duration_seconds"], 300);

    let nameless = deploy(app, (15, 0), 7, json!({})).await;
    let card_of_nameless = self::card(app, &nameless).await;
    assert_eq!(card_of_nameless["changes"]["kind"], "unknown");
    assert_eq!(card_of_nameless["changes"]["since"]["id"], again.as_str());
    assert_eq!(card_of_nameless["commit_url"], Value::Null);

    // Another project's key does not see the card.
    app.project(&app.admin_key, "other").await;
    let other = app.key("read", Some("other")).await;
    let (status, _) = app
        .get(&format!("/api/v1/deployments/{forward}"), &other)
        .await;
    assert_eq!(status, 404);
}

on_both_backends!(a_deployment_says_what_it_changed);
