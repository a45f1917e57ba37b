//! The Clienwork-compatible `POST /api/webhooks/ci`, replaying the vendor document's examples
//! with their CI variables filled in as each CI system would, on SQLite and PostgreSQL.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

/// The GitHub Actions example: the body after GitHub expanded its expressions.
fn github_actions_body(status: &str) -> String {
    format!(
        r#"{{
              "event": "deploy.completed",
              "project_slug": "my-project",
              "status": "{status}",
              "ref": "refs/heads/main",
              "commit_sha": "{SHA}",
              "commit_message": "feat: add login feature #PR-123",
              "environment": "production",
              "url": "https://github.com/org/repo/actions/runs/123456"
            }}"#
    )
}

async fn send(app: &TestApp, provider: &str, body: String) -> (u16, Value) {
    let bearer = format!("Bearer {}", app.admin_key);
    app.post_raw(
        "/api/webhooks/ci",
        &[("Authorization", &bearer), ("X-CI-Provider", provider)],
        body,
    )
    .await
}

async fn the_github_actions_example(app: &TestApp) {
    let (status, body) = send(app, "github-actions", github_actions_body("success")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["linked_requests"], json!(["PR-123"]));
    assert_eq!(
        body["message"],
        "Processed deploy.completed event. Linked 1 request(s)."
    );
    let id = body["deployment_id"].as_str().unwrap();
    let (status, deployment) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{deployment}");
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["provider"], "github-actions");
    assert_eq!(deployment["provider_status"], "success");
    assert_eq!(deployment["project"], "my-project");
    assert_eq!(
        deployment["application"], "my-project",
        "the project's default application"
    );
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["environment_kind"], "production");
    assert_eq!(deployment["ref"], "refs/heads/main");
    assert_eq!(deployment["branch"], "main");
    assert_eq!(deployment["commit_sha"], SHA);
    assert_eq!(
        deployment["run_url"],
        "https://github.com/org/repo/actions/runs/123456"
    );
    assert_eq!(
        deployment["references"],
        json!([{"key": "PR-123", "closing": false}])
    );
}

async fn the_gitlab_example_with_its_job_statuses(app: &TestApp) {
    for (job_status, expected, pipeline) in [
        ("failed", "failed", 1),
        ("canceled", "cancelled", 2),
        ("success", "success", 3),
    ] {
        // `$CI_JOB_STATUS`, `$CI_COMMIT_REF_NAME`, … as GitLab fills them.
        let body = format!(
            "{{\n  \"event\": \"deploy.completed\",\n  \"project_slug\": \"my-project\",\n  \"status\": \"{job_status}\",\n  \"ref\": \"main\",\n  \"commit_sha\": \"{SHA}\",\n  \"commit_message\": \"fix: closes #REQ-456\",\n  \"environment\": \"production\",\n  \"url\": \"https://gitlab.example.com/org/repo/-/pipelines/{pipeline}\"\n}}"
        );
        let (status, answer) = send(app, "gitlab-ci", body).await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["deployment_id"].as_str().unwrap();
        let (_, deployment) = app
            .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
            .await;
        assert_eq!(deployment["status"], expected, "{job_status}");
        assert_eq!(
            deployment["provider_status"], job_status,
            "the raw status is kept"
        );
        assert_eq!(
            deployment["references"],
            json!([{"key": "REQ-456", "closing": true}])
        );
    }
}

async fn the_jenkins_example(app: &TestApp) {
    // No commit message in this example; `${GIT_BRANCH}` is `origin/main` on Jenkins.
    let body = format!(
        r#"{{
            "event": "deploy.completed",
            "project_slug": "my-project",
            "status": "failure",
            "ref": "origin/main",
            "commit_sha": "{SHA}",
            "environment": "production",
            "url": "https://jenkins.example.com/job/deploy/42/"
        }}"#
    );
    let (status, answer) = send(app, "jenkins", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["linked_requests"], json!([]));
    assert_eq!(
        answer["message"],
        "Processed deploy.completed event. Linked 0 request(s)."
    );
    let id = answer["deployment_id"].as_str().unwrap();
    let (_, deployment) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(deployment["status"], "failed");
    assert_eq!(deployment["provider"], "jenkins");
}

async fn started_and_completed_of_one_run_share_a_deployment(app: &TestApp) {
    let started = github_actions_body("running").replace("deploy.completed", "deploy.started");
    let (_, first) = send(app, "github-actions", started).await;
    let (_, second) = send(app, "github-actions", github_actions_body("success")).await;
    assert_eq!(first["deployment_id"], second["deployment_id"]);
    let (_, again) = send(app, "github-actions", github_actions_body("success")).await;
    assert_eq!(
        again["deployment_id"], second["deployment_id"],
        "a retry is the same deployment"
    );
    let (_, page) = app.get("/api/v1/deployments", &app.admin_key).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["status"], "success");
}

async fn every_documented_key_header_is_accepted(app: &TestApp) {
    for header in ["X-API-Key", "X-Clienwork-API-Key"] {
        let (status, body) = app
            .post_raw(
                "/api/webhooks/ci",
                &[(header, &app.admin_key)],
                github_actions_body("success"),
            )
            .await;
        assert_eq!(status, 200, "{header}: {body}");
    }
}

async fn errors_say_what_to_fix(app: &TestApp) {
    let (status, body) = send(
        app,
        "custom",
        r#"{"event": "invalid", "project_slug": "my-project"}"#.into(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Invalid event type: invalid");
    assert_eq!(body["valid_events"].as_array().unwrap().len(), 6);

    let (status, body) = app
        .post_raw("/api/webhooks/ci", &[], github_actions_body("success"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "missing_credentials");
    let (status, _) = app
        .post_raw(
            "/api/webhooks/ci",
            &[("Authorization", "Bearer nope")],
            github_actions_body("success"),
        )
        .await;
    assert_eq!(status, 401);

    let unknown = github_actions_body("success").replace("\"my-project\"", "\"nope\"");
    let (status, body) = send(app, "custom", unknown).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "project_not_found");

    let unexpanded = github_actions_body("success").replace(SHA, "${GIT_COMMIT}");
    let (status, body) = send(app, "jenkins", unexpanded).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("commit_sha: invalid commit SHA"),
        "{body}"
    );

    let (status, body) = send(
        app,
        "custom",
        r#"{"event": "deploy.completed", "status": 5}"#.into(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("status: invalid type"),
        "{body}"
    );
    let (status, _) = send(app, "custom", "{not json".into()).await;
    assert_eq!(status, 400);

    let no_env = github_actions_body("success").replace(r#""environment": "production","#, "");
    let (status, body) = send(app, "custom", no_env).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "missing_field");

    let reader = app.key("read", None).await;
    let (status, body) = app
        .post_raw(
            "/api/webhooks/ci",
            &[("X-API-Key", &reader)],
            github_actions_body("success"),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let huge = github_actions_body("success")
        .replace("feat: add login feature", &"x".repeat(1024 * 1024 + 1));
    let (status, _) = send(app, "custom", huge).await;
    assert_eq!(status, 413, "bodies over 1 MiB are refused");
    let (_, page) = app.get("/api/v1/deployments", &app.admin_key).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "no refused request wrote anything"
    );
}

async fn githubs_head_commit_timestamp_is_the_commit_time(app: &TestApp) {
    let body = json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": "success",
        "environment": "production", "commit_sha": SHA,
        "url": "https://github.com/org/repo/actions/runs/77",
        "head_commit": {"id": SHA, "message": "feat: x", "timestamp": "2025-03-01T09:30:00+01:00"},
    });
    let (status, answer) = send(app, "github-actions", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["deployment_id"].as_str().unwrap();
    let (_, deployment) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(deployment["commit_timestamp"], "2025-03-01T08:30:00Z");

    // A CI variable it did not have arrives blank: it counts as absent, not as an error.
    let blank = json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": "success",
        "environment": "production", "commit_sha": SHA, "commit_timestamp": "",
        "started_at": " ", "url": "https://github.com/org/repo/actions/runs/78",
    });
    let (status, answer) = send(app, "github-actions", blank.to_string()).await;
    assert_eq!(status, 200, "{answer}");
}

/// What the GitLab guide in docs/ci sends: a bare ref name, the branch beside it, and the
/// commit's own time.
async fn the_gitlab_guides_body(app: &TestApp) {
    let body = json!({
        "event": "deploy.completed", "project_slug": "my-project", "environment": "production",
        "status": "success", "ref": "main", "branch": "main", "commit_sha": SHA,
        "commit_message": "fix: say \"hi\"\nfixes #PR-7", "commit_timestamp": "2025-03-01T09:30:00+00:00",
        "url": "https://gitlab.example.com/org/repo/-/pipelines/9", "deployed_by": "ana",
    });
    let (status, answer) = send(app, "gitlab-ci", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["deployment_id"].as_str().unwrap();
    let (_, deployment) = app
        .get(&format!("/api/v1/deployments/{id}"), &app.admin_key)
        .await;
    assert_eq!(deployment["ref"], "main");
    assert_eq!(deployment["branch"], "main");
    assert_eq!(deployment["commit_timestamp"], "2025-03-01T09:30:00Z");
    assert_eq!(deployment["references"][0]["key"], "PR-7");
}

/// One-line fields with a control or bidirectional formatting character, and a status word
/// longer than any provider's, are refused with a 400 naming the field, and nothing is stored.
async fn one_line_fields_refuse_control_characters_and_long_status_words(app: &TestApp) {
    let long_status = "s".repeat(900_000);
    let cases: [(&str, &str); 6] = [
        ("environment", r"production\u001b[31m"),
        ("branch", r"main\u202e"),
        ("status", r"success\u0007"),
        ("deployed_by", r"eve\r\nX-Injected: 1"),
        ("ref", r"refs/heads/\u2066main"),
        ("status", &long_status),
    ];
    for (field, value) in cases {
        let body = github_actions_body("success").replacen(
            "\"event\"",
            &format!("\"{field}\": \"{value}\", \"event\""),
            1,
        );
        let body = if field == "status" {
            body.replacen("\"status\": \"success\",", "", 1)
        } else {
            body
        };
        let (status, answer) = send(app, "github-actions", body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(answer.to_string().contains(field), "{field}: {answer}");
    }
    assert!(app.deployments().await.is_empty(), "nothing was stored");
    // Text that is merely unusual is kept.
    let body = github_actions_body("success").replace("production", "Production EU");
    let (status, answer) = send(app, "github-actions", body).await;
    assert_eq!(status, 200, "{answer}");
}

on_both_backends!(
    the_gitlab_guides_body,
    the_github_actions_example,
    the_gitlab_example_with_its_job_statuses,
    the_jenkins_example,
    started_and_completed_of_one_run_share_a_deployment,
    every_documented_key_header_is_accepted,
    errors_say_what_to_fix,
    githubs_head_commit_timestamp_is_the_commit_time,
    one_line_fields_refuse_control_characters_and_long_status_words,
);
