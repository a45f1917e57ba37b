//! Argo CD notifications at an integration, on SQLite and PostgreSQL, with the body of the
//! template in docs/ci/argo.md: repeated on-deployed notifications of one sync are one
//! deployment, and a later on-health-degraded of the same sync turns it into a failure. The
//! templates of docs/ci/argo.md themselves are rendered with Go's `text/template` (the engine
//! of Argo CD's notifications; `tests/argocd/render.go`) and what they render is sent.

use serde_json::json;
use shiplog_blackbox::{TestApp, on_both_backends};

fn notification(phase: &str, health: &str, started: &str) -> String {
    json!({
        "app": "shop", "revision": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0",
        "sync_phase": phase, "health": health, "started_at": started,
        "finished_at": started.replace(":00:00Z", ":02:00Z"), "repo_url": "https://github.com/acme/shop.git",
        "environment": "production", "target_revision": "main",
        "commit_timestamp": "2026-11-28T09:00:00Z",
    })
    .to_string()
}

/// An `argocd` integration of `my-project`: its webhook path and its secret.
async fn argocd_integration(app: &TestApp) -> (String, String) {
    let (id, secret) = app
        .integration(json!({"provider": "argocd", "name": "Argo CD", "project": "my-project"}))
        .await;
    (format!("/api/v1/integrations/{id}/webhook"), secret)
}

async fn repeated_notifications_of_one_sync_are_one_deployment(app: &TestApp) {
    let (url, token) = argocd_integration(app).await;
    let token = token.as_str();
    let send = |body: String| {
        let url = url.clone();
        async move {
            app.post_raw(&url, &[("X-Shiplog-Token", token)], body)
                .await
        }
    };
    for _ in 0..3 {
        let (status, answer) =
            send(notification("Succeeded", "Healthy", "2026-11-28T10:00:00Z")).await;
        assert_eq!(status, 200, "{answer}");
    }
    let items = app.deployments().await;
    assert_eq!(
        items.len(),
        1,
        "three on-deployed, one deployment: {items:?}"
    );
    assert_eq!(items[0]["status"], "success");
    assert_eq!(items[0]["provider"], "argo-cd");
    assert_eq!(
        items[0]["commit_sha"],
        "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"
    );
    // The same sync degrades: the deployment failed.
    let (status, _) = send(notification(
        "Succeeded",
        "Degraded",
        "2026-11-28T10:00:00Z",
    ))
    .await;
    assert_eq!(status, 200);
    let items = app.deployments().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "failed");
    // A new sync of the same revision is a new deployment.
    let (status, _) = send(notification("Succeeded", "Healthy", "2026-11-28T11:00:00Z")).await;
    assert_eq!(status, 200);
    assert_eq!(app.deployments().await.len(), 2);
    let (status, _) = app
        .post_raw(
            &url,
            &[],
            notification("Succeeded", "Healthy", "2026-11-28T12:00:00Z"),
        )
        .await;
    assert_eq!(status, 401);
}

/// The `body` of a template of docs/ci/argo.md, as the YAML block scalar holds it.
fn documented_body(template: &str) -> String {
    let doc = include_str!("../docs/ci/argo.md");
    let start = doc
        .find(&format!("template.{template}: |"))
        .unwrap_or_else(|| panic!("docs/ci/argo.md has template.{template}"));
    let mut lines = doc[start..].lines().skip_while(|l| l.trim() != "body: |");
    let body_line = lines.next().expect("the template has a body");
    let indent = body_line.len() - body_line.trim_start().len();
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect();
    let margin = block
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap();
    let mut body: String = block
        .iter()
        .map(|l| l.get(margin..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    body.push('\n');
    body
}

/// Builds `tests/argocd/render.go` once; `None` (the test skips) where Go is missing outside CI.
fn renderer(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let binary = dir.join("render");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/argocd/render.go"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GO111MODULE", "off")
        .status();
    match built {
        Ok(status) if status.success() => Some(binary),
        other => {
            let why = format!("cannot build tests/argocd/render.go with go: {other:?}");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            shiplog_store::testdb::skip(&why);
            None
        }
    }
}

/// Renders a template body for an Application; the error is Go's.
fn render(
    renderer: &std::path::Path,
    dir: &std::path::Path,
    body: &str,
    app: &serde_json::Value,
) -> Result<String, String> {
    let template = dir.join("template.txt");
    let application = dir.join("application.json");
    std::fs::write(&template, body).unwrap();
    std::fs::write(&application, app.to_string()).unwrap();
    let out = std::process::Command::new(renderer)
        .arg(&template)
        .arg(&application)
        .arg("2026-11-28T09:00:00Z")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// An Argo CD Application as the Kubernetes API holds it (the fields of its CRD the templates
/// read): synced and healthy, a sync that failed before Argo CD computed its result (a
/// comparison error: no `syncResult`), or degraded with no operation at all.
fn application(state: &str) -> serde_json::Value {
    let sha = "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0";
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://github.com/acme/shop.git", "path": "deploy", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "production"}},
        "status": {"sync": {"status": "Synced", "revision": sha}, "health": {"status": "Healthy"}},
    });
    match state {
        "synced" => {
            app["status"]["operationState"] = json!({
                "operation": {"sync": {"revision": sha}}, "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": "2026-11-28T10:00:00Z", "finishedAt": "2026-11-28T10:01:35Z",
                "syncResult": {"revision": sha, "source": app["spec"]["source"].clone(), "resources": []},
            });
        }
        "comparison-error" => {
            app["status"]["sync"]["status"] = json!("Unknown");
            app["status"]["operationState"] = json!({
                "operation": {"sync": {"revision": sha}}, "phase": "Error",
                "message": "ComparisonError: failed to load target state",
                "startedAt": "2026-11-28T11:00:00Z", "finishedAt": "2026-11-28T11:00:02Z",
            });
        }
        _ => app["status"]["health"]["status"] = json!("Degraded"),
    }
    app
}

async fn the_documented_templates_render_in_go_and_are_accepted(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let Some(renderer) = renderer(dir.path()) else {
        return;
    };
    let (url, token) = argocd_integration(app).await;
    let sync = documented_body("shiplog-sync");
    let hivel = documented_body("shiplog-deployment");
    for state in ["synced", "comparison-error", "degraded"] {
        let body = render(&renderer, dir.path(), &sync, &application(state))
            .unwrap_or_else(|e| panic!("{state}: the integration template fails in Go: {e}"));
        let parsed: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{state}: not JSON ({e}): {body}"));
        let (status, answer) = app
            .post_raw(&url, &[("X-Shiplog-Token", &token)], body)
            .await;
        assert_eq!(status, 200, "{state}: {answer} for {parsed}");
        assert_eq!(
            answer["verdict"], "accepted",
            "{state}: {answer} for {parsed}"
        );
    }
    let items = app.deployments().await;
    let synced = items
        .iter()
        .find(|d| d["started_at"] == "2026-11-28T10:00:00Z")
        .unwrap();
    assert_eq!(synced["status"], "success", "{synced}");
    assert_eq!(
        synced["commit_sha"],
        "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"
    );
    assert_eq!(synced["commit_timestamp"], "2026-11-28T09:00:00Z");
    assert_eq!(synced["finished_at"], "2026-11-28T10:01:35Z");
    let failed = items
        .iter()
        .find(|d| d["started_at"] == "2026-11-28T11:00:00Z")
        .unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");

    // The Hivel-compatible body: one event per finished sync, the failed one included.
    let key = app.key("ingest", Some("my-project")).await;
    for state in ["synced", "comparison-error"] {
        let body = render(&renderer, dir.path(), &hivel, &application(state))
            .unwrap_or_else(|e| panic!("{state}: the Hivel template fails in Go: {e}"));
        let (status, answer) = app
            .post_raw("/api/hooks/v2/deployment", &[("X-API-Token", &key)], body)
            .await;
        assert!(status == 200 || status == 201, "{state}: {status} {answer}");
    }
    // The templates as they were written before fail in Go, as in Argo CD.
    let old = "{{(call .repo.GetCommitMetadata .app.status.operationState.syncResult.revision).Date.Format \\\"2006\\\"}}";
    let error = render(&renderer, dir.path(), old, &application("synced")).unwrap_err();
    assert!(error.contains("unexpected"), "{error}");
    let nil =
        "{{(call .repo.GetCommitMetadata .app.status.operationState.syncResult.revision).Date}}";
    let error = render(&renderer, dir.path(), nil, &application("comparison-error")).unwrap_err();
    assert!(error.contains("value is nil"), "{error}");
}

on_both_backends!(
    repeated_notifications_of_one_sync_are_one_deployment,
    the_documented_templates_render_in_go_and_are_accepted,
);
