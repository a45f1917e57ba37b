//! Jenkins' Notification plugin at an integration, on SQLite and PostgreSQL: the plugin cannot
//! sign or set headers, so the secret rides in the URL (`?token=`) or in `X-Shiplog-Token`; a
//! job named in `settings.deploy_jobs` is a deploy, and its phases make one deployment.

use serde_json::json;
use shiplog_blackbox::{TestApp, on_both_backends};

fn notification(job: &str, phase: &str, status: Option<&str>) -> String {
    json!({
        "name": job, "url": format!("job/{job}/"),
        "build": {
            "full_url": format!("http://jenkins.example/job/{job}/18/"), "number": 18,
            "phase": phase, "status": status, "url": format!("job/{job}/18/"),
            "scm": {"url": "https://github.com/acme/shop.git", "branch": "origin/main",
                    "commit": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"},
        },
    })
    .to_string()
}

async fn a_deploy_job_reports_through_the_notification_plugin(app: &TestApp) {
    let (status, created) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "jenkins", "name": "Jenkins", "project": "my-project",
                   "settings": {"deploy_jobs": {"shop-deploy": "production"}}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let url = format!("/api/v1/integrations/{id}/webhook");
    // The token in the URL, as the plugin's endpoint setting carries it.
    let (status, answer) = app
        .post_raw(
            &format!("{url}?token={secret}"),
            &[],
            notification("shop-deploy", "STARTED", None),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "running");
    // Or in a header.
    let (status, answer) = app
        .post_raw(
            &url,
            &[("X-Shiplog-Token", secret)],
            notification("shop-deploy", "COMPLETED", Some("FAILURE")),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "one Jenkins build, one deployment");
    let deployment = &items[0];
    assert_eq!(deployment["status"], "failed");
    assert_eq!(deployment["provider"], "jenkins");
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["branch"], "main");
    assert_eq!(deployment["build_number"], "18");
    assert_eq!(
        deployment["run_url"],
        "http://jenkins.example/job/shop-deploy/18/"
    );
    // FINALIZED repeats COMPLETED: ignored. Another job is a build, not a deployment.
    let (_, answer) = app
        .post_raw(
            &url,
            &[("X-Shiplog-Token", secret)],
            notification("shop-deploy", "FINALIZED", Some("FAILURE")),
        )
        .await;
    assert_eq!(answer["verdict"], "ignored");
    let (_, answer) = app
        .post_raw(
            &url,
            &[("X-Shiplog-Token", secret)],
            notification("shop-test", "COMPLETED", Some("SUCCESS")),
        )
        .await;
    assert_eq!(answer["verdict"], "accepted");
    assert_eq!(app.deployments().await.len(), 1);
    // Without the token, or with another, nothing is read.
    let (status, _) = app
        .post_raw(
            &format!("{url}?token=guess"),
            &[],
            notification("shop-deploy", "STARTED", None),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_raw(&url, &[], notification("shop-deploy", "STARTED", None))
        .await;
    assert_eq!(status, 401);
}

/// What the plugin itself sends (built from its model classes, see fixtures/jenkins/README.md)
/// for a branch of a multibranch pipeline: `deploy_jobs` names the job by its full name, the
/// times are the build's own (a 95 s deploy lasts 95 s), and the culprits are who deployed.
async fn the_plugins_own_payloads_give_the_builds_times_and_people(app: &TestApp) {
    const STARTED: &str = include_str!("fixtures/jenkins/started.json");
    const COMPLETED: &str = include_str!("fixtures/jenkins/completed.json");
    let (status, created) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "jenkins", "name": "Jenkins", "project": "my-project",
                   "settings": {"deploy_jobs": {"shop/main": "production"}}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let url = format!("/api/v1/integrations/{id}/webhook?token={secret}");
    for body in [STARTED, COMPLETED] {
        let (status, answer) = app.post_raw(&url, &[], body.to_owned()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verdict"], "accepted", "{answer}");
    }
    let items = app.deployments().await;
    assert_eq!(items.len(), 1, "{items:?}");
    let deployment = &items[0];
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["started_at"], "2025-03-13T10:00:00Z");
    assert_eq!(deployment["finished_at"], "2025-03-13T10:01:35Z");
    assert_eq!(deployment["deployed_by"], "ana, bo");
    assert_eq!(deployment["external_id"], "shop/main#18");
    assert_eq!(deployment["branch"], "main");
}

on_both_backends!(
    a_deploy_job_reports_through_the_notification_plugin,
    the_plugins_own_payloads_give_the_builds_times_and_people,
);
