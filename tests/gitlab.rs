//! GitLab's own webhooks at an integration, on SQLite and PostgreSQL, with GitLab's documented
//! Deployment Hook example (`tests/fixtures/gitlab/`, CC BY-SA 4.0, see its README) and the
//! integration's secret as `X-Gitlab-Token`.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

const DEPLOYMENT: &str = include_str!("fixtures/gitlab/deployment.json");
const JOB: &str = include_str!("fixtures/gitlab/job.json");
const PUSH: &str = include_str!("fixtures/gitlab/push.json");

async fn a_push_gives_its_commits_times_to_lead_time(app: &TestApp) {
    let (id, secret) = integration(app).await;
    // GitLab's example push: da156088 made 2012-01-03T23:36:29+02:00 (21:36:29Z); its
    // deployment, an hour later, arrives after the push.
    let (status, answer) = deliver(app, &id, "Push Hook", PUSH, Some(&secret)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    app.clienwork(
        &app.admin_key,
        json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
               "application": "diaspora", "environment": "production",
               "finished_at": "2012-01-03T22:36:29Z",
               "commit_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}),
    )
    .await;
    let (status, body) = app
        .get(
            "/api/v1/metrics/dora?project=my-project&from=2012-01-01T00:00:00Z&to=2012-02-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lead_time"]["median_seconds"], 3600.0, "{body}");
    // A merge request that is not merged is ignored.
    let opened = json!({"object_kind": "merge_request",
                        "object_attributes": {"iid": 1, "action": "open"}});
    let (status, answer) = deliver(
        app,
        &id,
        "Merge Request Hook",
        &opened.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
}

async fn integration(app: &TestApp) -> (String, String) {
    app.integration(
        json!({"provider": "gitlab", "name": "test-deployment-webhooks", "project": "my-project"}),
    )
    .await
}

async fn deliver(
    app: &TestApp,
    id: &str,
    event: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut headers = vec![("X-Gitlab-Event", event), ("X-Gitlab-Event-UUID", "uuid-1")];
    if let Some(token) = token {
        headers.push(("X-Gitlab-Token", token));
    }
    app.post_raw(
        &format!("/api/v1/integrations/{id}/webhook"),
        &headers,
        body.to_owned(),
    )
    .await
}

async fn gitlabs_deployment_example_becomes_a_deployment(app: &TestApp) {
    let (id, secret) = integration(app).await;
    // The same deployment, running first.
    let mut running: Value = serde_json::from_str(DEPLOYMENT).unwrap();
    running["status"] = json!("running");
    running["status_changed_at"] = json!("2021-04-28 21:45:00 +0200");
    let (status, answer) = deliver(
        app,
        &id,
        "Deployment Hook",
        &running.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "running");

    let (status, answer) = deliver(app, &id, "Deployment Hook", DEPLOYMENT, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let deployment = &items[0];
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["provider"], "gitlab-ci");
    assert_eq!(deployment["environment"], "staging");
    assert_eq!(
        deployment["commit_sha"],
        "279484c09fbe69ededfced8c1bb6e6d24616b468"
    );
    assert_eq!(deployment["commit_message"], "Add new file");
    assert_eq!(deployment["deployed_by"], "root");
    assert_eq!(
        deployment["run_url"],
        "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796"
    );
    assert_eq!(deployment["started_at"], "2021-04-28T19:45:00Z");
    assert_eq!(deployment["finished_at"], "2021-04-28T19:50:00Z");
    assert_eq!(deployment["application"], "test-deployment-webhooks");
    assert_eq!(
        deployment["ref"],
        Value::Null,
        "the documented example names no ref"
    );

    // GitLab versions that send the deployed `ref` (the example above predates it): kept as the
    // ref and the branch, so a hotfix branch makes the deployment rework.
    let mut hotfix: Value = serde_json::from_str(DEPLOYMENT).unwrap();
    hotfix["deployment_id"] = json!(16);
    hotfix["deployable_id"] = json!(797);
    hotfix["ref"] = json!("hotfix/login");
    let (status, answer) = deliver(
        app,
        &id,
        "Deployment Hook",
        &hotfix.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    let hotfix = items.iter().find(|d| d["ref"] == "hotfix/login").unwrap();
    assert_eq!(hotfix["branch"], "hotfix/login");
    assert_eq!(hotfix["rework"], "hotfix_ref");
}

async fn a_wrong_or_missing_token_records_nothing(app: &TestApp) {
    let (id, _) = integration(app).await;
    let (status, body) = deliver(app, &id, "Deployment Hook", DEPLOYMENT, Some("guess")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = deliver(app, &id, "Deployment Hook", DEPLOYMENT, None).await;
    assert_eq!(status, 401);
    assert!(app.deployments().await.is_empty());
    let (_, log) = app
        .get(
            &format!("/api/v1/integrations/{id}/deliveries"),
            &app.admin_key,
        )
        .await;
    let verdicts: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["rejected", "rejected"]);
}

async fn a_job_that_starts_an_environment_is_one_deployment_with_its_deployment_hook(
    app: &TestApp,
) {
    let (id, secret) = integration(app).await;
    // GitLab's example as it is: a test job with no environment is not a deployment.
    let (status, answer) = deliver(app, &id, "Job Hook", JOB, Some(&secret)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    // The same job starting `eu-west` (whose name says nothing; GitLab's tier says production).
    let mut job: Value = serde_json::from_str(JOB).unwrap();
    job["environment"] =
        json!({"name": "eu-west", "action": "start", "deployment_tier": "production"});
    job["build_status"] = json!("running");
    job["build_started_at_iso"] = json!("2021-02-23T02:45:00Z");
    let (status, answer) = deliver(app, &id, "Job Hook", &job.to_string(), Some(&secret)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    // The Deployment Hook of the same job (deployable_id = build_id) finishes the same record.
    let mut deployment: Value = serde_json::from_str(DEPLOYMENT).unwrap();
    deployment["deployable_id"] = json!(1977);
    deployment["deployable_url"] =
        json!("http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977");
    deployment["environment"] = json!("eu-west");
    deployment["environment_tier"] = json!("production");
    deployment["project"]["path_with_namespace"] = json!("gitlab-org/gitlab-test");
    deployment["project"]["web_url"] = json!("http://192.168.64.1:3005/gitlab-org/gitlab-test");
    let (status, answer) = deliver(
        app,
        &id,
        "Deployment Hook",
        &deployment.to_string(),
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let one = &items[0];
    assert_eq!(one["status"], "success");
    assert_eq!(one["environment"], "eu-west");
    assert_eq!(one["environment_kind"], "production");
    assert_eq!(one["application"], "gitlab-test");
    assert_eq!(one["started_at"], "2021-02-23T02:45:00Z");
    assert_eq!(
        one["run_url"],
        "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977"
    );
    // The Job Hook of GitLab versions that send no `project` object, only `repository`, is the
    // same job of the same application: its later status updates the same deployment.
    let mut bare = job.clone();
    bare.as_object_mut().unwrap().remove("project");
    bare["build_status"] = json!("success");
    bare["build_finished_at_iso"] = json!("2021-02-23T02:50:00Z");
    let (status, answer) = deliver(app, &id, "Job Hook", &bare.to_string(), Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "one job, one deployment: {items:?}");
    assert_eq!(items[0]["application"], "gitlab-test");
    assert_eq!(
        items[0]["run_url"],
        "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977"
    );
    // A job stopping an environment is not a deployment.
    job["environment"]["action"] = json!("stop");
    job["build_id"] = json!(1978);
    let (status, answer) = deliver(app, &id, "Job Hook", &job.to_string(), Some(&secret)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert_eq!(app.deployments().await.len(), 1);
    // A skipped deploy job says nothing about an outcome: by the domain's one rule
    // (`status::finished`) it has not finished, so it gets no finish time.
    job["environment"]["action"] = json!("start");
    job["build_id"] = json!(1979);
    job["build_status"] = json!("skipped");
    job["build_finished_at_iso"] = json!("2021-02-23T02:55:00Z");
    let (status, answer) = deliver(app, &id, "Job Hook", &job.to_string(), Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    let skipped = items
        .iter()
        .find(|d| d["run_url"].as_str().unwrap_or("").ends_with("/1979"))
        .unwrap();
    assert_eq!(skipped["status"], "unknown", "{skipped}");
    assert_eq!(skipped["finished_at"], Value::Null, "{skipped}");
}

on_both_backends!(
    a_push_gives_its_commits_times_to_lead_time,
    a_job_that_starts_an_environment_is_one_deployment_with_its_deployment_hook,
    gitlabs_deployment_example_becomes_a_deployment,
    a_wrong_or_missing_token_records_nothing,
);
