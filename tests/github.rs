//! GitHub's own webhooks at an integration, on SQLite and PostgreSQL, with GitHub's published
//! example payloads (`tests/fixtures/github/`, MIT, see its README) signed as GitHub signs them:
//! a deployment and its status become one deployment without any pipeline change; forged,
//! unsigned, unreadable and unknown deliveries get their answer and a line in the log; a
//! rotated-out secret works through its grace period.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

const PING: &str = include_str!("fixtures/github/ping.json");
const DEPLOYMENT: &str = include_str!("fixtures/github/deployment.json");
pub(crate) const DEPLOYMENT_STATUS: &str = include_str!("fixtures/github/deployment_status.json");
const RUN_REQUESTED: &str = include_str!("fixtures/github/workflow_run_requested.json");
const RUN_COMPLETED: &str = include_str!("fixtures/github/workflow_run.json");
const JOB_FAILED: &str = include_str!("fixtures/github/workflow_job_failure.json");
const JOB_RUNNING: &str = include_str!("fixtures/github/workflow_job_in_progress.json");
const PUSH: &str = include_str!("fixtures/github/push.json");
const PULL_REQUEST_CLOSED: &str = include_str!("fixtures/github/pull_request_closed.json");

/// A successful production deployment of `sha`, finished at `at`, with no commit time.
async fn deployed(app: &TestApp, sha: &str, at: &str) {
    app.clienwork(
        &app.admin_key,
        json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
               "application": "hello-world", "environment": "production", "finished_at": at,
               "commit_sha": sha, "url": format!("https://ci.example/runs/{sha}")}),
    )
    .await;
}

/// The lead time of May 2019 in production: (median seconds, samples, no commit time).
async fn lead_time(app: &TestApp) -> (Value, Value, Value) {
    let (status, body) = app
        .get(
            "/api/v1/metrics/dora?project=my-project&from=2019-05-01T00:00:00Z&to=2019-06-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let lead = &body["lead_time"];
    (
        lead["median_seconds"].clone(),
        lead["samples"].clone(),
        lead["exclusions"]["no_commit_time"].clone(),
    )
}

async fn a_push_gives_its_commits_times_in_either_order(app: &TestApp) {
    let (id, secret) = integration(app).await;
    // GitHub's example push: commit 6113728f made at 2019-05-15T15:19:25Z. Deployed an hour
    // later, reported with no commit time: lead time unknown until the push arrives.
    deployed(
        app,
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "2019-05-15T16:19:25Z",
    )
    .await;
    assert_eq!(lead_time(app).await, (Value::Null, json!(0), json!(1)));
    let (status, answer) = deliver(app, &id, "push", "p-1", PUSH, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    assert_eq!(lead_time(app).await, (json!(3600.0), json!(1), json!(0)));
    // Delivered again: nothing changes.
    let (status, _) = deliver(app, &id, "push", "p-1", PUSH, Some(&secret)).await;
    assert_eq!(status, 200);
    assert_eq!(lead_time(app).await, (json!(3600.0), json!(1), json!(0)));

    // The pull request example (#2), closed without merging: ignored. Merged: its head commit
    // (ec26c3e5, deployed before the merge was heard of) and its merge commit (c4295bd7,
    // deployed after) count from the pull request's opening (2019-05-15T15:20:33Z), and both
    // deployments carry the reference #2.
    let (status, answer) = deliver(
        app,
        &id,
        "pull_request",
        "p-2",
        PULL_REQUEST_CLOSED,
        Some(&secret),
    )
    .await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    deployed(
        app,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "2019-05-15T16:20:33Z",
    )
    .await;
    assert_eq!(lead_time(app).await, (json!(3600.0), json!(1), json!(1)));
    let mut merged: Value = serde_json::from_str(PULL_REQUEST_CLOSED).unwrap();
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!("2019-05-15T15:25:00Z");
    let (status, answer) = deliver(
        app,
        &id,
        "pull_request",
        "p-3",
        &merged.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    deployed(
        app,
        "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
        "2019-05-15T17:20:33Z",
    )
    .await;
    // Lead times 3600 (the push), 3600 (head) and 7200 s (merge): median 3600.
    assert_eq!(lead_time(app).await, (json!(3600.0), json!(3), json!(0)));
    let (status, reference) = app
        .get("/api/v1/projects/my-project/references/2", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{reference}");
    assert_eq!(reference["key"], "#2", "{reference}");
    assert_eq!(reference["status"], "deployed", "{reference}");
    let mut carried: Vec<&str> = reference["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["commit_sha"].as_str().unwrap())
        .collect();
    carried.sort_unstable();
    assert_eq!(
        carried,
        [
            "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
        ]
    );
    // The merged pull request delivered again links nothing twice.
    let (status, _) = deliver(
        app,
        &id,
        "pull_request",
        "p-3",
        &merged.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200);
    let (_, again) = app
        .get("/api/v1/projects/my-project/references/2", &app.admin_key)
        .await;
    assert_eq!(again["deployments"].as_array().unwrap().len(), 2, "{again}");
    // A push deleting a branch records nothing.
    let mut deleted: Value = serde_json::from_str(PUSH).unwrap();
    deleted["deleted"] = json!(true);
    let (status, answer) =
        deliver(app, &id, "push", "p-4", &deleted.to_string(), Some(&secret)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("nothing"),
        "{answer}"
    );
}

pub(crate) async fn integration(app: &TestApp) -> (String, String) {
    app.integration(json!({"provider": "github", "name": "Hello-World", "project": "my-project"}))
        .await
}

/// Posts `body` as GitHub would: its event, a delivery id, and the signature under `secret`.
pub(crate) async fn deliver(
    app: &TestApp,
    id: &str,
    event: &str,
    delivery: &str,
    body: &str,
    secret: Option<&str>,
) -> (u16, Value) {
    let signature = secret.map(|s| shiplog_signature::github::sign(s.as_bytes(), body.as_bytes()));
    let mut headers = vec![("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery)];
    if let Some(signature) = &signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    app.post_raw(
        &format!("/api/v1/integrations/{id}/webhook"),
        &headers,
        body.to_owned(),
    )
    .await
}

async fn log(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let (status, body) = app
        .get(
            &format!("/api/v1/integrations/{id}/deliveries"),
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap_or("").to_owned(),
                d["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn githubs_examples_become_one_deployment(app: &TestApp) {
    let (id, secret) = integration(app).await;
    let (status, answer) = deliver(app, &id, "ping", "d-1", PING, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted");
    assert!(app.deployments().await.is_empty());

    let (status, answer) = deliver(app, &id, "deployment", "d-2", DEPLOYMENT, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["environment"], "production");

    let (status, answer) = deliver(
        app,
        &id,
        "deployment_status",
        "d-3",
        DEPLOYMENT_STATUS,
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted");
    let items = app.deployments().await;
    assert_eq!(
        items.len(),
        1,
        "the status updates the deployment: {items:?}"
    );
    let deployment = &items[0];
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["provider"], "github-actions");
    assert_eq!(
        deployment["commit_sha"],
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    );
    assert_eq!(deployment["ref"], "master");
    assert_eq!(
        deployment["branch"], "master",
        "GitHub's deployment.ref names the branch"
    );
    assert_eq!(deployment["deployed_by"], "Codertocat");
    assert_eq!(deployment["external_id"], "145988746");
    assert_eq!(deployment["application"], "hello-world");

    // GitHub redelivers the same status: nothing new.
    let (status, answer) = deliver(
        app,
        &id,
        "deployment_status",
        "d-3",
        DEPLOYMENT_STATUS,
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        answer["reason"].as_str().unwrap().contains("repeat"),
        "{answer}"
    );
    assert_eq!(app.deployments().await.len(), 1);

    assert_eq!(
        log(app, &id).await,
        [
            ("deployment_status".to_owned(), "accepted".to_owned()),
            ("deployment_status".to_owned(), "accepted".to_owned()),
            ("deployment".to_owned(), "accepted".to_owned()),
            ("ping".to_owned(), "accepted".to_owned()),
        ]
    );
}

async fn forged_unreadable_and_unknown_deliveries_are_answered_and_logged(app: &TestApp) {
    let (id, secret) = integration(app).await;
    let (status, body) = deliver(
        app,
        &id,
        "deployment",
        "f-1",
        DEPLOYMENT,
        Some("not-the-secret"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_signature");
    let (status, _) = deliver(app, &id, "deployment", "f-2", DEPLOYMENT, None).await;
    assert_eq!(status, 401);
    assert!(
        app.deployments().await.is_empty(),
        "nothing forged is recorded"
    );
    let (status, body) = deliver(
        app,
        &id,
        "deployment",
        "f-3",
        "payload=%7B%7D",
        Some(&secret),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );
    let (status, body) = deliver(
        app,
        &id,
        "issues",
        "f-4",
        "{\"action\": \"opened\"}",
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["verdict"], "ignored");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("deployment_status"),
        "{body}"
    );
    let verdicts: Vec<String> = log(app, &id).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(verdicts, ["ignored", "rejected", "rejected", "rejected"]);
    let (status, _) = deliver(
        app,
        "00000000-0000-4000-8000-000000000000",
        "ping",
        "f-5",
        PING,
        Some(&secret),
    )
    .await;
    assert_eq!(status, 404);
}

async fn a_rotated_out_secret_works_through_its_grace_period(app: &TestApp) {
    let (id, old) = integration(app).await;
    let (status, rotated) = app
        .post(
            &format!("/api/v1/integrations/{id}/rotate-secret"),
            &app.admin_key,
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap();
    for secret in [old.as_str(), new] {
        let (status, body) = deliver(app, &id, "ping", "r-1", PING, Some(secret)).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A workflow named in `deploy_workflows` is a deploy: its run becomes one deployment, with its
/// head commit's message and time; any other workflow is a build.
async fn a_deploy_workflow_run_is_a_deployment(app: &TestApp) {
    let (status, created) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "github", "name": "octo-repo", "project": "my-project",
                   "settings": {"deploy_workflows": {"test": "production"}}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let (status, answer) =
        deliver(app, id, "workflow_run", "w-1", RUN_REQUESTED, Some(secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "pending");
    let (status, answer) =
        deliver(app, id, "workflow_run", "w-2", RUN_COMPLETED, Some(secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let deployment = &items[0];
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["branch"], "master");
    assert_eq!(
        deployment["commit_sha"],
        "3484a3fb816e0859fd6e1cea078d76385ff50625"
    );
    assert_eq!(
        deployment["commit_message"],
        "build(test): check workflow run event payload"
    );
    assert_eq!(deployment["commit_timestamp"], "2020-10-05T16:32:07Z");
    assert_eq!(
        deployment["run_url"],
        "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    );
    // Another integration without the workflow in its settings records a build, no deployment.
    let (_, other) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "github", "name": "builds only", "project": "my-project"}),
        )
        .await;
    let (status, answer) = deliver(
        app,
        other["id"].as_str().unwrap(),
        "workflow_run",
        "w-3",
        RUN_COMPLETED.replace("289782451", "289782452").as_str(),
        other["secret"].as_str(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted");
    assert_eq!(app.deployments().await.len(), 1);
}

/// A job named in `deploy_jobs` is a deploy; other jobs are left to their workflow run.
async fn a_deploy_job_is_a_deployment(app: &TestApp) {
    let (id, secret) = app
        .integration(
            json!({"provider": "github", "name": "octo-org", "project": "my-project",
                            "settings": {"deploy_jobs": {"linters": "production"}}}),
        )
        .await;
    let (status, answer) =
        deliver(app, &id, "workflow_job", "j-1", JOB_FAILED, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["environment"], "production");
    assert_eq!(items[0]["started_at"], "2021-08-05T10:34:58Z");
    assert_eq!(items[0]["finished_at"], "2021-08-05T10:38:16Z");
    // "Analyze (javascript)" is not a deploy job.
    let (status, answer) =
        deliver(app, &id, "workflow_job", "j-2", JOB_RUNNING, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "ignored");
    assert_eq!(app.deployments().await.len(), 1);
}

on_both_backends!(
    a_push_gives_its_commits_times_in_either_order,
    a_deploy_job_is_a_deployment,
    a_deploy_workflow_run_is_a_deployment,
    githubs_examples_become_one_deployment,
    forged_unreadable_and_unknown_deliveries_are_answered_and_logged,
    a_rotated_out_secret_works_through_its_grace_period,
);
